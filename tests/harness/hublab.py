"""A test host running the whole stack: Docker, accounts, shares (written, not mounted: no
CIFS in a container) and the hub with its registry, from image archives built on the runner
and with this machine's CA certificates, as an offline lab behind a TLS-inspecting proxy.

The shares' content is simulated by a "file server": directories bind-mounted onto the
mount points, owned as the share's uid/gid options would make them."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.harness import cli
from tests.harness import snapshots
from tests.harness.engine import run
from tests.harness.hosts import TestHost, wait_for_ssh, free_port, remove_host, start_host, write_inventory
from tests.harness.images import hub_images
from tests.harness.lab import write_secrets
from tests.harness.tlslab import session_ca

RUNNER_CA_DIRECTORY = Path("/usr/local/share/ca-certificates")
SNAPSHOT_HOST = "hubhost"  # the name of the converged hub host every hub test host starts from
SHARE_CREDENTIALS = {"data": ("labreader", "Hub-Lab-Data-Pw-5!"), "analysis": ("labwriter", "Hub-Lab-Analysis-Pw-8?")}


@dataclass
class HubLab:
    host: TestHost
    inventory: Path
    url: str  # the hub as the runner reaches it
    first_run: dict
    first_run_seconds: float

    def docker(self, command: str, check: bool = True) -> str:
        return self.host.exec(f"docker {command}", check=check).stdout.strip()

    def wait_until_answering(self, timeout: float = 120) -> None:
        """The hub answers on its health URL (after a boot its stack comes up by itself)."""
        deadline = time.monotonic() + timeout
        while self.host.exec("curl -sf -o /dev/null -m 5 http://127.0.0.1:8000/hub/health", check=False).returncode != 0:
            assert time.monotonic() < deadline, f"the hub on {self.host.name} did not answer within {timeout:.0f} s"
            time.sleep(0.5)

    def reboot(self) -> None:
        """`systemctl reboot` inside, then the machine powered on again (its loopback ports are
        fixed, so the inventory and the hub's URL stay right): /run is empty, dockerd and the
        stack come back by themselves, as on a real server."""
        self.host.exec("systemctl reboot", check=False)
        began = time.monotonic()
        # Alone it goes down in ~2 s; systemd gives a unit 90 s to stop. Once, in a full suite,
        # it took over 60 s: what is still stopping after 20 s is printed, for the next one.
        deadline, shown = began + 150, False
        while run("docker", "inspect", "--format", "{{.State.Running}}", self.host.container).stdout.strip() == "true":
            if time.monotonic() > began + 20 and not shown:
                shown = True
                jobs = run("docker", "exec", self.host.container, "sh", "-c", "systemctl list-jobs --no-pager; ps axf", check=False)
                print(f"reboot of {self.host.name}: still going down after 20 s:\n{jobs.stdout[-4000:]}")
            assert time.monotonic() < deadline, "the test host did not go down"
            time.sleep(0.5)
        print(f"reboot of {self.host.name}: down after {time.monotonic() - began:.1f} s")
        run("docker", "start", self.host.container)
        wait_for_ssh(self.host)


def hub_data() -> dict:
    images = hub_images()
    return {
        "docker": {"source": "distro"},
        "admins": ["labadmin"],
        "users": ["alice", {"name": "bob", "admin": True}, "carol"],
        "mount_shares": False,
        "shares": [
            {"name": "data", "server": "files.example.org", "share": "data", "mount_point": "/mnt/data", "read_only": True},
            {"name": "analysis", "server": "files.example.org", "share": "analysis", "mount_point": "/mnt/analysis",
             "uid": "jupyter-alice", "gid": "users"},
        ],
        "image_archives": [str(archive) for _, archive in images.values()],
        # This machine's CAs (its TLS-inspecting proxy): the hub's image build needs PyPI;
        # and the suite's own, which Pebble's and slapd's certificates chain to.
        "extra_ca_certificates": [*sorted(str(p) for p in RUNNER_CA_DIRECTORY.glob("*.crt")), str(session_ca().path)],
        "hub": {
            "base_image": images["jupyterhub"][0],
            "registry_image": images["registry"][0],
            "images": [{"name": "notebook", "build_args": {"BASE_IMAGE": images["minimal-notebook"][0]}}],
            "mem_limit": "1G",
            "cpu_limit": 1.0,
            # The suite's members log in without setup codes; tests/test_logins.py proves them.
            "login": {"first_login": "open"},
        },
    }


FILE_SERVER = """
mkdir -p /srv/fileserver/data /srv/fileserver/analysis
echo 'measurements from the beamline' > /srv/fileserver/data/readme.txt
chown jupyter-alice:users /srv/fileserver/analysis && chmod 0775 /srv/fileserver/analysis
mountpoint -q /mnt/data || mount --bind /srv/fileserver/data /mnt/data
mountpoint -q /mnt/analysis || mount --bind /srv/fileserver/analysis /mnt/analysis
"""


def hub_snapshot(workdir: Path, image: str, key: Path) -> snapshots.Snapshot:
    """The hub host converged from bare, once per run (whichever worker asks first makes
    it; test_hub checks that first run), kept as a snapshot that every hub test host of the
    run starts from."""
    with snapshots.making("hub"):
        found = snapshots.existing("hub")
        if found:
            return found
        host = start_host(SNAPSHOT_HOST, image, key)
        try:
            inventory = write_inventory(workdir / "hub_hosts.py", [(host, hub_data())])
            write_secrets(inventory, SHARE_CREDENTIALS)
            started = time.monotonic()
            first_run = cli.converge(inventory)
            seconds = time.monotonic() - started
            return snapshots.take(host, "hub", {"first_run": first_run, "first_run_seconds": seconds}, power_on=False)
        finally:
            remove_host(host)


@contextlib.contextmanager
def converged_hub(workdir: Path, snapshot: snapshots.Snapshot, key: Path, name: str = SNAPSHOT_HOST) -> Iterator[HubLab]:
    """A hub host of its own, started from the run's converged one, with the hub's data."""
    port, ssh_port = free_port(), free_port()  # fixed: both survive a reboot of the host
    while ssh_port == port:
        ssh_port = free_port()
    host = snapshots.start_copy(snapshot, name, key, extra_args=("-p", f"127.0.0.1:{port}:8000"), ssh_port=ssh_port)
    try:
        inventory = write_inventory(workdir / "hub_hosts.py", [(host, hub_data())])
        write_secrets(inventory, SHARE_CREDENTIALS)
        host.exec(FILE_SERVER)
        lab = HubLab(host, inventory, f"http://127.0.0.1:{port}", snapshot.facts["first_run"], snapshot.facts["first_run_seconds"])
        lab.wait_until_answering()
        yield lab
    finally:
        remove_host(host)
