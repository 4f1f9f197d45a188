"""Throwaway test hosts: systemd + sshd containers reachable over SSH on a loopback port.

Each runs with the capabilities a nested Docker engine needs (`--privileged` is refused on
the test machines), a volume at /var/lib/docker so the inner engine gets overlay2, and root's
authorized key generated for the session. `started_hosts()` removes them at the end, also
when a test fails.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.harness.engine import READY_TIMEOUT, run

# Measured to work on the test machines (TESTING-ENVIRONMENT.md): systemd as PID 1 and a
# nested Docker engine, without --privileged. systempaths=unconfined leaves /proc/sys
# writable, as on a real server: the nested engine's containers need it (IPv6 settings).
SYSTEMD_CONTAINER_ARGS = (
    "--cap-add", "SYS_ADMIN", "--cap-add", "NET_ADMIN",
    "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
    "--security-opt", "systempaths=unconfined",
    "--cgroupns=host", "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
    "--tmpfs", "/run", "--tmpfs", "/run/lock",
)
SSH_OPTIONS = ("-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "BatchMode=yes")


def loopback_ssh(port: int, key: Path) -> dict:
    """pyinfra host data for root over SSH on a loopback port (throwaway hosts: no known_hosts)."""
    return {
        "ssh_hostname": "127.0.0.1",
        "ssh_port": port,
        "ssh_user": "root",
        "ssh_key": str(key),
        "ssh_known_hosts_file": "/dev/null",
        "ssh_strict_host_key_checking": "no",
    }


def make_ssh_key(directory: Path) -> Path:
    key = directory / "id_ed25519"
    if not key.exists():
        directory.mkdir(parents=True, exist_ok=True)
        run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "labhub-tests", "-f", str(key))
    return key


@dataclass
class TestHost:
    name: str
    container: str
    ssh_port: int
    key: Path
    __test__ = False  # not a pytest test class

    def exec(self, command: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess:
        """Run a shell command as root inside the host (not over SSH: for test setup)."""
        return run("docker", "exec", "-i", self.container, "sh", "-c", command, check=check, input=input)

    def ssh(self, command: str, check: bool = True) -> subprocess.CompletedProcess:
        return run("ssh", *SSH_OPTIONS, "-i", str(self.key), "-p", str(self.ssh_port), "root@127.0.0.1", command, check=check)

    def connection_data(self) -> dict:
        """pyinfra host data that connects to this host."""
        return loopback_ssh(self.ssh_port, self.key)

    def stop(self) -> None:
        run("docker", "stop", "-t", "5", self.container, check=False)

    def start(self) -> None:
        run("docker", "start", self.container)
        self.ssh_port = _published_port(self.container)
        wait_for_ssh(self)


def _published_port(container: str) -> int:
    mapping = run("docker", "port", container, "22/tcp").stdout.split()[0]
    return int(mapping.rsplit(":", 1)[1])


def wait_for_ssh(host: TestHost, timeout: float = READY_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError):
            with socket.create_connection(("127.0.0.1", host.ssh_port), timeout=2):
                pass
            if host.ssh("true", check=False).returncode == 0:
                return
        if time.monotonic() > deadline:
            logs = run("docker", "logs", "--tail", "30", host.container, check=False)
            raise RuntimeError(f"test host {host.name} not reachable over SSH:\n{logs.stdout}{logs.stderr}")
        time.sleep(0.5)


def free_port() -> int:
    """A loopback port nothing listens on now (for a port that must survive a restart)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_host(name: str, image: str, key: Path, extra_args: tuple[str, ...] = (), container: str | None = None,
               ssh_port: int | None = None) -> TestHost:
    """`ssh_port`: a fixed loopback port (kept when the container restarts); none: any."""
    container = container or f"labhub-test-{os.getpid()}-{name}"
    run("docker", "rm", "-f", "-v", container, check=False)
    run(
        "docker", "run", "-d", "--name", container, "--hostname", name,
        "--label", "labhub-test=1", *SYSTEMD_CONTAINER_ARGS,
        "-v", "/var/lib/docker", "-p", f"127.0.0.1:{ssh_port or ''}:22", *extra_args, image, "/sbin/init",
    )
    host = TestHost(name, container, _published_port(container), key)
    publish_key(host)
    wait_for_ssh(host)
    return host


def publish_key(host: TestHost) -> None:
    """root's authorized key: the session's. sshd starts with the container; the key may
    land before or after, both are fine."""
    deadline = time.monotonic() + READY_TIMEOUT
    while host.exec("test -d /root", check=False).returncode != 0:
        if time.monotonic() > deadline:
            raise RuntimeError(f"test host {host.name} did not start")
        time.sleep(0.2)
    host.exec("install -d -m 700 /root/.ssh && cat > /root/.ssh/authorized_keys && chmod 600 /root/.ssh/authorized_keys",
              input=host.key.with_suffix(".pub").read_text())


def remove_host(host: TestHost) -> None:
    """Removed now, in the teardown (~370 s summed over a run). Removing in the background
    saved that in the teardowns but not in the run: 56.1 and 57 min in the background, 47,
    49 and 55.0 min in the foreground; the machine's speed varies more than either choice."""
    run("docker", "rm", "-f", "-v", host.container, check=False)


@contextlib.contextmanager
def started_hosts(names: list[str], image: str, key: Path) -> Iterator[dict[str, TestHost]]:
    hosts: dict[str, TestHost] = {}
    try:
        for name in names:
            hosts[name] = start_host(name, image, key)
        yield hosts
    finally:
        for host in hosts.values():
            remove_host(host)


def write_inventory(path: Path, hosts: list[tuple[TestHost, dict]], group: str = "testhosts") -> Path:
    """A pyinfra inventory file for test hosts, each with its connection data and lab data."""
    entries = [(host.name, {**host.connection_data(), **data}) for host, data in hosts]
    path.write_text(f'"""Generated by the test harness."""\n\n{group} = {entries!r}\n')
    return path


@dataclass
class Lab:
    """Test hosts converged from one inventory, and each host's lab data."""

    inventory: Path
    hosts: dict[str, TestHost] = field(default_factory=dict)
    data: dict[str, dict] = field(default_factory=dict)
