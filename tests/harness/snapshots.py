"""Converged test hosts kept as snapshots: a module that needs a host with the lab already on
it starts from a copy of one (about 40 s) instead of converging a bare host (about 3 min).

A snapshot is the host's root filesystem (`docker commit`) and its nested Docker engine's
data (the volume at /var/lib/docker, copied), taken with the host powered off, so that the
copy is what a server's disk holds after a clean shutdown. A copy boots as that server
would: dockerd and the hub's stack come back by themselves (the reboot case of test_hub
shows that they do). It gets its own name, SSH port and address.

Exactly one test per path starts from a bare host: the fresh converge of the hub
(test_hub), the restore (test_backup's reinstalled server) and the cut-off deploys
(test_interruptions). Snapshots are taken once per run, by whichever of the suite's
workers asks first (the others wait), and belong to that run (RUN, which its workers inherit):
the run removes them when it ends, and a later run those of a run that died.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.harness.engine import CACHE, run
from tests.harness.hosts import SYSTEMD_CONTAINER_ARGS, TestHost, publish_key, wait_for_ssh

# The run a process belongs to: the pid of the pytest that started it (its workers inherit it).
RUN = os.environ.setdefault("LABHUB_TEST_RUN", str(os.getpid()))
SNAPSHOTS = CACHE / "snapshots" / RUN


@dataclass(frozen=True)
class Snapshot:
    name: str
    image: str  # the committed root filesystem
    docker_data: Path  # a copy of its /var/lib/docker
    facts: dict  # what the test that made it wants to keep (its first run's results, say)


def _docker_volume(container: str) -> Path:
    mounts = json.loads(run("docker", "inspect", "--format", "{{json .Mounts}}", container).stdout)
    return Path(next(m["Source"] for m in mounts if m["Destination"] == "/var/lib/docker"))


def power_off(host: TestHost, timeout: float = 150) -> float:
    """`systemctl poweroff` inside, and wait until the container has stopped."""
    started = time.monotonic()
    host.exec("systemctl poweroff", check=False)
    while run("docker", "inspect", "--format", "{{.State.Running}}", host.container).stdout.strip() == "true":
        if time.monotonic() > started + timeout:
            run("docker", "stop", "-t", "5", host.container, check=False)
            break
        time.sleep(0.5)
    return time.monotonic() - started


def take(host: TestHost, name: str, facts: dict | None = None, power_on: bool = True) -> Snapshot:
    """Power the host off, keep its disk, and (`power_on`) power it on again, as after a reboot."""
    power_off(host)
    image = f"labhub-snapshot/{name}:{RUN}"
    run("docker", "commit", "--change", 'CMD ["/sbin/init"]', host.container, image, timeout=600)
    data = SNAPSHOTS / name
    shutil.rmtree(data, ignore_errors=True)
    data.parent.mkdir(parents=True, exist_ok=True)
    run("cp", "-a", str(_docker_volume(host.container)), str(data), timeout=900)
    snapshot = Snapshot(name, image, data, facts or {})
    (SNAPSHOTS / f"{name}.json").write_text(json.dumps({"image": image, "facts": snapshot.facts}))
    if power_on:
        host.start()
    return snapshot


@contextlib.contextmanager
def making(name: str) -> Iterator[None]:
    """One maker of a snapshot at a time: the other worker waits, then finds it made."""
    SNAPSHOTS.mkdir(parents=True, exist_ok=True)
    with open(SNAPSHOTS / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def existing(name: str) -> Snapshot | None:
    """A snapshot this run took already (by either worker)."""
    described = SNAPSHOTS / f"{name}.json"
    if not described.exists():
        return None
    found = json.loads(described.read_text())
    if run("docker", "image", "inspect", found["image"], check=False).returncode != 0:
        return None
    return Snapshot(name, found["image"], SNAPSHOTS / name, found["facts"])


def start_copy(snapshot: Snapshot, name: str, key: Path, extra_args: tuple[str, ...] = (), ssh_port: int | None = None,
               container: str | None = None) -> TestHost:
    """A new host from the snapshot: its disk copied, then booted."""
    container = container or f"labhub-test-{os.getpid()}-{name}"
    run("docker", "rm", "-f", "-v", container, check=False)
    run(
        "docker", "create", "--name", container, "--hostname", name, "--label", "labhub-test=1", *SYSTEMD_CONTAINER_ARGS,
        "-v", "/var/lib/docker", "-p", f"127.0.0.1:{ssh_port or ''}:22", *extra_args, snapshot.image, "/sbin/init",
    )
    volume = _docker_volume(container)
    run("sh", "-c", f'cp -a "{snapshot.docker_data}/." "{volume}/"', timeout=900)
    run("docker", "start", container)
    host = TestHost(name, container, 0, key)
    host.ssh_port = int(run("docker", "port", container, "22/tcp").stdout.split()[0].rsplit(":", 1)[1])
    publish_key(host)
    wait_for_ssh(host)
    return host


def remove(run_id: str = RUN) -> None:
    """A run's snapshots: their images and data."""
    for image in run("docker", "images", "-q", "--filter", f"reference=labhub-snapshot/*:{run_id}", check=False).stdout.split():
        run("docker", "rmi", "-f", image, check=False)
    shutil.rmtree(CACHE / "snapshots" / run_id, ignore_errors=True)


def remove_those_of_dead_runs() -> None:
    """Snapshots left by runs that were killed (their pytest is gone)."""
    for directory in (CACHE / "snapshots").glob("*"):
        if directory.name.isdigit() and directory.name != RUN and not Path(f"/proc/{directory.name}").exists():
            remove(directory.name)
