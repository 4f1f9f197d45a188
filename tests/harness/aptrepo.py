"""The fake Docker apt repository (see fake_docker_repo.py), built once and served on each
test host's own loopback, where the deploy fetches its key and packages over HTTP."""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path

from tests.harness.engine import CACHE, cache_lock, run
from tests.harness.hosts import TestHost

BUILDER = Path(__file__).with_name("fake_docker_repo.py")
PORT = 8765


@dataclass(frozen=True)
class FakeDockerRepo:
    path: Path
    fingerprint: str

    url = f"http://127.0.0.1:{PORT}/repo"  # as seen from inside a test host

    def serve_on(self, host: TestHost) -> None:
        """Copy the repository into `host` and serve it on the host's 127.0.0.1."""
        host.exec("rm -rf /srv/fake-docker-repo")
        run("docker", "cp", f"{self.path}/.", f"{host.container}:/srv/fake-docker-repo")
        host.exec(
            "systemctl stop fake-docker-repo 2>/dev/null; systemd-run --unit fake-docker-repo "
            f"python3 -m http.server {PORT} --bind 127.0.0.1 --directory /srv/fake-docker-repo"
        )
        host.exec(f"for i in $(seq 50); do python3 -c 'import urllib.request as u; u.urlopen(\"{self.url}/gpg\")' 2>/dev/null && exit 0; sleep 0.1; done; exit 1")


def fake_docker_repo(image: str) -> FakeDockerRepo:
    """Build (or reuse) the signed repository in a throwaway container of the test image."""
    recipe = hashlib.sha256(BUILDER.read_bytes() + image.encode()).hexdigest()[:12]
    out = CACHE / f"fake-docker-repo-{recipe}"
    with cache_lock("fake-docker-repo"):
        if not (out / "fingerprint").exists():
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir(parents=True)
            run("docker", "run", "--rm", "-v", f"{out}:/out", "-v", f"{BUILDER}:/build.py:ro", image, "python3", "/build.py", "/out")
    return FakeDockerRepo(out, (out / "fingerprint").read_text().strip())
