"""The session's VM lab: one Debian 13 VM (tests/harness/vm.py) with three extra disks: an
empty one (/dev/vdb), one that holds an ext4 filesystem with a file on it (/dev/vdc), and a
small empty one a test makes the groups' XFS of (/dev/vdd); and
a Samba server on the runner's loopback; converged once with two CIFS shares, then used in
order by tests/test_vm_shares.py and tests/test_vm_quotas.py (one unit of work: the VM's
boot and first converge are paid once). No hub: what needs a real kernel is the host layer."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

from tests.harness import cli
from tests.harness.engine import run
from tests.harness.samba import ACCOUNT, SambaServer
from tests.harness.vm import GUEST_HOST_ADDRESS, running_vm

FIRST_PASSWORD = "Samba-First-7q!X"
SHARES = [
    {"name": "data", "server": GUEST_HOST_ADDRESS, "share": "data", "mount_point": "/mnt/data", "read_only": True, "options": ["port=4450"]},
    {"name": "analysis", "server": GUEST_HOST_ADDRESS, "share": "analysis", "mount_point": "/mnt/analysis",
     "uid": "jupyter-alice", "gid": "users", "file_mode": "0664", "dir_mode": "0775", "options": ["port=4450"]},
]
USERS = [{"name": "alice", "uid": 1001}]
BACKUP_PASSWORD = "Vm-Restic-Pw-4!"
EMPTY_DISK, USED_DISK, GROUPS_DISK = "/dev/vdb", "/dev/vdc", "/dev/vdd"
USED_DISK_FILE = ("thesis-draft.txt", "the only copy of chapter 3\n")  # on USED_DISK's ext4


class VmLab:
    def __init__(self, vm, samba, workdir: Path):
        self.vm, self.samba = vm, samba
        self.inventory = workdir / "vm_hosts.py"
        self.secrets = workdir / "vm_hosts.secrets.toml"
        self.env: dict[str, str] = {}
        self.passwords = {"data": FIRST_PASSWORD, "analysis": FIRST_PASSWORD}
        self.write(SHARES)

    def write(self, shares: list[dict], hub: dict | None = None, users: list[dict] | None = None, groups: list[dict] | None = None,
              backup: dict | None = None) -> None:
        data = {**self.vm.connection_data(), "hub": {"enabled": False, **(hub or {})}, "docker": {"source": "distro"},
                "admins": ["labadmin"], "users": users or USERS, "shares": shares, "groups": groups or [], **({"backup": backup} if backup else {})}
        self.inventory.write_text(f"vm = [('labhub-vm', {data!r})]\n")
        self.secrets.write_text(f'[shares.analysis]\nusername = "{ACCOUNT}"\npassword = "{self.passwords["analysis"]}"\n'
                                + (f'[backup]\npassword = "{BACKUP_PASSWORD}"\n' if backup else ""))
        self.secrets.chmod(0o600)
        self.env = {"LABHUB_SHARE_DATA_USERNAME": ACCOUNT, "LABHUB_SHARE_DATA_PASSWORD": self.passwords["data"]}

    def deploy(self):
        return cli.deploy(self.inventory, env=self.env)

    def converge(self) -> list[str]:
        try:
            # 15 min: the first run takes ~3 here; a run that hangs (CI once sat 30 min in it) says where.
            return cli.changed_operations(cli.converge(self.inventory, env=self.env, timeout=900)).get("labhub-vm", [])
        except AssertionError as failure:
            inside = self.vm.ssh("ps axfww | tail -n 40", check=False, timeout=60).stdout
            raise AssertionError(f"{failure}\n--- the VM's processes\n{inside}") from None

    def sh(self, command: str, check: bool = True) -> str:
        return self.vm.ssh(command, check=check).stdout.strip()

    def mounted(self) -> dict[str, str]:
        lines = self.sh("findmnt -rn -t cifs -o TARGET,SOURCE,OPTIONS", check=False).splitlines()
        return {line.split()[0]: line for line in lines}


def extra_disks(workdir: Path) -> tuple[Path, Path, Path]:
    """/dev/vdb: 1 GiB of nothing (sparse); /dev/vdc: 64 MiB of ext4 holding USED_DISK_FILE;
    /dev/vdd: 320 MiB of nothing (XFS needs 300)."""
    empty, used, content, groups = workdir / "empty.img", workdir / "used.img", workdir / "used-content", workdir / "groups.img"
    run("truncate", "-s", "1G", str(empty))
    run("truncate", "-s", "320M", str(groups))
    content.mkdir()
    (content / USED_DISK_FILE[0]).write_text(USED_DISK_FILE[1])
    run("mkfs.ext4", "-q", "-F", "-L", "old-data", "-d", str(content), str(used), "64M")
    return empty, used, groups


@contextlib.contextmanager
def converged_vm_lab(workdir: Path) -> Iterator[VmLab]:
    samba = SambaServer(None, FIRST_PASSWORD)
    samba.start()
    try:
        with running_vm(workdir, disks=extra_disks(workdir)) as vm:
            lab = VmLab(vm, samba, workdir)
            started = time.monotonic()
            lab.first_changes = lab.converge()
            lab.first_converge_seconds = time.monotonic() - started
            yield lab
    finally:
        samba.remove()
