"""Reading the quota use of 500 homes, as the host checks do, on the VM (a real kernel: the
container test hosts have no quotas), and the no-op deploy of those 500 homes with quotas."""

from __future__ import annotations

import statistics
import subprocess
from pathlib import Path

from labhub.inventory import validate_host_data
from labhub.ops.quotas import DiskState
from tasks.disk import group_folders
from tests.benchmark.common import ROUNDS, floor, lab_data, noop, table, timed
from tests.harness import cli
from tests.harness.vm import running_vm


def quotas(workdir: Path) -> str:
    """500 members with a home quota each, their homes on an XFS disk labhub formatted. The read
    is the disk fact's command (a fixed number of processes), timed inside the VM; the VM is
    emulated in software (about 10x slower than native), so a real server reads it faster."""
    disk = workdir / "homes.img"
    subprocess.run(["truncate", "-s", "2G", str(disk)], check=True)
    with running_vm(workdir, disks=(disk,)) as vm:
        data = {**lab_data(500), "hub": {"enabled": False, "home_quota": "100M", "homes_device": "/dev/vdb"}}
        inventory = workdir / "quota_hosts.py"
        inventory.write_text(f"vm = [('bench-quotas', {{**{vm.connection_data()!r}, **{data!r}}})]\n")
        converge_seconds = timed(lambda: cli.converge(inventory, timeout=3600))
        config = validate_host_data("bench-quotas", {**vm.connection_data(), **data})
        command = DiskState().command(group_folders(config))
        vm.ssh(f"cat > /root/read.sh <<'EOF_'\n{command}\nEOF_")
        lines = int(vm.ssh("sh /root/read.sh | grep -c '^Q'").stdout.strip())
        reads, noops, floors = [], [], []
        for _ in range(ROUNDS):
            reads.append(float(vm.ssh("python3 -c 'import subprocess, time; s = time.monotonic(); "
                                      "subprocess.run([\"sh\", \"/root/read.sh\"], stdout=subprocess.DEVNULL); print(time.monotonic() - s)'").stdout.strip()))
        for _ in range(3):
            floors.append(timed(lambda: floor(inventory)))
            noops.append(timed(lambda: noop(inventory)))
    rows = [
        ("read the quota use of 500 homes, on the host", statistics.median(reads), min(reads), f"{lines} projects in the report"),
        ("fresh converge: 500 accounts, disk formatted, 500 quotas", converge_seconds, converge_seconds, "one run"),
        ("pyinfra floor (`exec -- true`)", statistics.median(floors), min(floors), "3 rounds"),
        ("no-op deploy, 500 homes with quotas", statistics.median(noops), min(noops),
         f"{statistics.median(noops) / statistics.median(floors):.2f}x the floor"),
    ]
    return table("Quotas (VM)", rows, "The read is what the host checks and the deploy's disk fact run: findmnt, stat, lsattr "
                 "and xfs_quota's report once each, however many homes.", method=f"median of {ROUNDS} reads; VM in software emulation")
