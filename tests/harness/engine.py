"""The runner's Docker engine and the test-host image.

Test hosts are Debian 13 containers with systemd, sshd and room for a nested Docker engine.
The image is built from Debian's packages with mmdebstrap (no image registry is reachable)
and cached under a tag derived from its recipe, so it is built once per machine.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "labhub-tests"
DEBIAN_MIRROR = os.environ.get("LABHUB_TEST_DEBIAN_MIRROR", "http://deb.debian.org/debian")
# How long the harness waits for a server it started (a test host's sshd, smbd, slapd, Pebble)
# to answer: each wait ends as soon as it does; the bound is for three workers on two cores.
READY_TIMEOUT = 90

# What a freshly installed minimal server has: systemd, sshd, python3, the usual tools.
TESTHOST_PACKAGES = ("systemd", "systemd-sysv", "dbus", "openssh-server", "iproute2", "procps", "python3", "less")


def run(*cmd: str, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    kwargs.setdefault("capture_output", True)
    kwargs.setdefault("text", True)
    result = subprocess.run(cmd, **kwargs)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def ensure_docker() -> None:
    """Use the running Docker engine, or start dockerd (the runner has no systemd)."""
    if run("docker", "info", check=False).returncode == 0:
        return
    with cache_lock("dockerd"):
        if run("docker", "info", check=False).returncode != 0:
            _start_dockerd()


def _start_dockerd() -> None:
    if not shutil.which("dockerd"):
        raise RuntimeError("no Docker engine is running and dockerd is not installed (apt-get install docker.io)")
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / "dockerd.log", "ab") as log:
        subprocess.Popen(["dockerd"], stdout=log, stderr=log, start_new_session=True)
    deadline = time.monotonic() + 90
    while run("docker", "info", check=False).returncode != 0:
        if time.monotonic() > deadline:
            raise RuntimeError(f"dockerd did not start; see {CACHE / 'dockerd.log'}")
        time.sleep(1)


@contextlib.contextmanager
def cache_lock(name: str) -> Iterator[None]:
    """One builder at a time for a cached artefact: the suite's workers (pytest-xdist) all
    ask for the test images as they start; the others wait and find them built."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def image_exists(tag: str) -> bool:
    return run("docker", "image", "inspect", tag, check=False).returncode == 0


def debian_image(suite: str, packages: tuple[str, ...], name: str) -> str:
    """A Debian root filesystem from mmdebstrap, imported as a Docker image (cached)."""
    recipe = f"{suite} {' '.join(packages)} {DEBIAN_MIRROR}"
    tag = f"{name}:{suite}-{hashlib.sha256(recipe.encode()).hexdigest()[:12]}"
    with cache_lock(name):
        if not image_exists(tag):
            _build_debian_image(suite, packages, tag)
    return tag


def _build_debian_image(suite: str, packages: tuple[str, ...], tag: str) -> None:
    mmdebstrap = subprocess.Popen(
        ["mmdebstrap", "--quiet", "--variant=minbase", f"--include={','.join(packages)}", suite, "-", DEBIAN_MIRROR],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    imported = subprocess.run(
        ["docker", "import", "--change", 'CMD ["/sbin/init"]', "-", tag],
        stdin=mmdebstrap.stdout,
        capture_output=True,
        text=True,
    )
    mmdebstrap.stdout.close()
    errors = mmdebstrap.stderr.read().decode()
    if mmdebstrap.wait() != 0 or imported.returncode != 0:
        run("docker", "rmi", "-f", tag, check=False)  # not a half-built image under this tag
        raise RuntimeError(f"building {tag} failed:\n{errors}\n{imported.stderr}")


def testhost_image() -> str:
    ensure_docker()
    return debian_image("trixie", TESTHOST_PACKAGES, "labhub-testhost")
