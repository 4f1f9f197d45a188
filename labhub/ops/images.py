"""Docker images: `docker save` archives loaded when the engine lacks their images, and
notebook images built on the host and pushed to the stack's local registry."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from pyinfra.api import FactBase, FileUploadCommand, operation

from labhub.ops import facts
from labhub.ops.shell import HTTP_STATUS, IMAGE_ID, q, script


class ImageIds(FactBase):
    """The image ID behind each of these names in the host's Docker engine (if it has it)."""

    default = dict

    def command(self, refs: tuple[str, ...]) -> str:
        return (
            f"{IMAGE_ID}; for ref in {' '.join(q(r) for r in refs)}; do "
            "id=$(image_id \"$ref\") && echo \"$ref $id\"; done; true"
        )

    def process(self, output):
        return dict(line.split() for line in output if len(line.split()) == 2)


@dataclass(frozen=True)
class ImageArchive:
    path: str  # on the machine running pyinfra
    images: tuple[tuple[str, str], ...]  # (name, image ID) of each image it holds


@operation()
def load_archives(archives: Sequence[ImageArchive]):
    """Upload and `docker load` each archive whose images the host does not have under their
    names (compared by image ID); the archive is removed from the host once loaded."""
    present = facts.get(ImageIds, refs=tuple(ref for a in archives for ref, _ in a.images))
    for archive in archives:
        if all(present.get(ref) == image_id for ref, image_id in archive.images):
            continue
        staged = f"/var/tmp/labhub-{hashlib.sha256(archive.path.encode()).hexdigest()[:12]}.tar"
        yield FileUploadCommand(archive.path, staged)
        yield script([f"docker load --quiet --input {staged}", f"rm -f {staged}"])


class RegistryImages(FactBase):
    """For each image of the local registry: 'L' if the engine has it, 'R' if the registry does."""

    def command(self, images: tuple[tuple[str, str, str], ...], registry: str) -> str:
        lines = []
        for ref, name, tag in images:
            lines.append(f"image_id {q(ref)} >/dev/null && echo {q('L ' + ref)}")
            lines.append(
                f"[ \"$({HTTP_STATUS} -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' "
                f"{q(f'http://{registry}/v2/{name}/manifests/{tag}')})\" = 200 ] && echo {q('R ' + ref)}"
            )
        return "; ".join([IMAGE_ID, *lines]) + "; true"

    @staticmethod
    def default():
        return {"local": set(), "registry": set()}

    def process(self, output):
        found = self.default()
        for line in output:
            kind, _, ref = line.strip().partition(" ")
            found["local" if kind == "L" else "registry"].add(ref)
        return found


@dataclass(frozen=True)
class ImageBuild:
    ref: str  # localhost:5000/<name>:<tag>
    name: str
    tag: str  # a digest of the build context: a new tag exactly when the context changes
    context: str  # build context directory on the host
    build_args: tuple[tuple[str, str], ...] = ()


@operation()
def in_registry(images: Sequence[ImageBuild], registry: str):
    """Each image built on the host (if the registry lacks it), pushed to the local registry,
    and present in the engine, so a user's first start does not wait for a pull."""
    now = facts.get(RegistryImages, images=tuple((i.ref, i.name, i.tag) for i in images), registry=registry)
    steps = []
    for image in images:
        if image.ref not in now["registry"]:
            if image.ref not in now["local"]:
                steps.append(build_step(image))
            steps.append(f"docker push --quiet {q(image.ref)} >/dev/null")
        elif image.ref not in now["local"]:
            steps.append(f"docker pull --quiet {q(image.ref)} >/dev/null")
    if steps:
        yield script(steps)


@operation()
def built(images: Sequence[ImageBuild]):
    """Each image built on the host if its engine lacks it under its tag (a swarm worker: the
    same tag as on the hub, so a server's image is the same wherever the swarm places it)."""
    present = facts.get(ImageIds, refs=tuple(image.ref for image in images))
    steps = [build_step(image) for image in images if image.ref not in present]
    if steps:
        yield script(steps)


def build_step(image: ImageBuild) -> str:
    arguments = " ".join(f"--build-arg {q(f'{k}={v}')}" for k, v in image.build_args)
    return (
        f"if ! out=$(docker build --quiet {arguments} --tag {q(image.ref)} {q(image.context)} 2>&1); then "
        f"echo \"image {image.name}: docker build failed:\" >&2; echo \"$out\" | tail -n 30 >&2; exit 1; fi"
    )
