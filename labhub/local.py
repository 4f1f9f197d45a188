"""Files on the machine that runs pyinfra (not on the lab's servers): the repository this
project lives in, files data names relative to it, image archives and CA certificates."""

from __future__ import annotations

import json
import re
import tarfile
from functools import lru_cache
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent  # computed once; everything else imports it
IMAGE_CONTEXTS = REPO / "files" / "images"  # one directory (with a Dockerfile) per notebook image


def directory_files(directory: Path) -> dict[str, bytes]:
    """Every file under a directory of this repository, by relative name, as it lands on a host
    (a build context, the lab page): Python's bytecode caches, which git ignores, left out."""
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file() and "__pycache__" not in p.parts}


def local_path(path: str) -> Path:
    """A file on the machine that runs pyinfra: absolute, or relative to the repository."""
    candidate = Path(path).expanduser()
    return candidate if candidate.is_absolute() else REPO / candidate


def file_identity(path: str) -> tuple[Path, int, float]:
    """A local file with its size and modification time: the cache key of archive_images."""
    file = local_path(path)
    stat = file.stat()
    return file, stat.st_size, stat.st_mtime


@lru_cache(maxsize=64)
def archive_images(path: Path, size: int, mtime: float) -> tuple[tuple[str, str], ...]:
    """(image name, image ID) of each image a `docker save` archive holds (its manifest.json
    names the config blob, whose digest is the image ID, in old and OCI layouts alike)."""
    with tarfile.open(path) as archive:
        manifest = archive.extractfile("manifest.json")
        if manifest is None:
            raise ValueError("has no manifest.json")
        images = json.load(manifest)
    found = []
    for image in images:
        image_id = "sha256:" + re.sub(r"\.json$", "", image["Config"].rsplit("/", 1)[-1])
        found += [(tag, image_id) for tag in image.get("RepoTags") or []]
    return tuple(found)


def is_pem_certificate(path: str) -> bool:
    file = local_path(path)
    return file.is_file() and "-----BEGIN CERTIFICATE-----" in file.read_text(errors="replace")


def certificates(paths: list[str]) -> dict[str, bytes]:
    """File name on the host -> PEM content; update-ca-certificates wants *.crt names."""
    return {f"{Path(path).stem}.crt": local_path(path).read_bytes() for path in paths}
