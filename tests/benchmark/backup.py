"""Backup and restore of 500 members' homes, and the no-op run with backups on."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.benchmark.common import ROUNDS, floor, lab_data, median_table, noop, table, timed
from tests.harness import cli
from tests.harness.backuplab import RESTIC
from tests.harness.engine import testhost_image
from tests.harness.hosts import make_ssh_key, remove_host, start_host, write_inventory
from tests.harness.lab import write_secrets


def backup(workdir: Path) -> str:
    """500 members with a notebook and 200 KiB of data each: a full backup, an incremental one
    after one file changed, the restore onto a fresh host, and the no-op deploy with backups on
    (10 vs 500 users). The repository is a directory of the runner mounted into the hosts."""
    image, key = testhost_image(), make_ssh_key(workdir / "ssh")
    repository = workdir / "repository"
    repository.mkdir()
    mount = ("-v", f"{repository}:/srv/backup")

    def data(users: int) -> dict:
        return {**lab_data(users), "backup": {"enabled": True, "repository": "/srv/backup/labhub"}}

    def last(host) -> dict:
        return json.loads(host.exec("cat /var/lib/labhub/backup/last-success.json").stdout)

    def run_backup(host) -> float:
        return timed(lambda: host.exec("systemctl start labhub-backup"))

    hosts = {n: start_host(f"bench-backup-{n}", image, key, extra_args=mount) for n in (10, 500)}
    fresh = None
    try:
        inventories = {n: write_inventory(workdir / f"backup_{n}.py", [(hosts[n], data(n))]) for n in hosts}
        for inventory in inventories.values():
            write_secrets(inventory, {}, "Benchmark-Restic-Pw-1")
            cli.converge(inventory)
        hosts[500].exec(
            "for home in /home/jupyter-*; do printf '{\"cells\": [], \"nbformat\": 4}' > $home/analysis.ipynb; "
            "head -c 200K /dev/urandom > $home/data.bin; chown -R --reference=$home $home; done"
        )
        full_seconds = run_backup(hosts[500])
        full = last(hosts[500])["summary"]
        hosts[500].exec("echo one more line >> /home/jupyter-user0007/analysis.ipynb")
        incremental_seconds = run_backup(hosts[500])
        incremental = last(hosts[500])["summary"]
        samples: dict[str, list[float]] = {"floor": [], "noop 10": [], "noop 500": []}
        for _ in range(ROUNDS):
            samples["floor"].append(timed(lambda: floor(inventories[10])))
            samples["noop 10"].append(timed(lambda: noop(inventories[10])))
            samples["noop 500"].append(timed(lambda: noop(inventories[500])))
        remove_host(hosts.pop(500))
        # The reinstall: a fresh host of the same name, converged, then restored.
        fresh = start_host("bench-backup-500", image, key, extra_args=mount, container=f"labhub-test-{os.getpid()}-bench-backup-500-new")
        write_inventory(inventories[500], [(fresh, data(500))])
        cli.converge(inventories[500])
        restore_seconds = timed(lambda: cli.converge(inventories[500], "--data", "restore=latest"))
        restored = int(fresh.exec("ls /home/jupyter-*/data.bin | wc -l").stdout)
        snapshots = len(json.loads(fresh.exec(f"{RESTIC} snapshots --json").stdout))
    finally:
        for host in [*hosts.values(), *([fresh] if fresh else [])]:
            remove_host(host)
    median = median_table(samples)
    mib = 1024 * 1024
    rows = [
        ("full backup, 500 homes (notebook + 200 KiB each)", full_seconds, full_seconds,
         f"{full['total_bytes_processed'] / mib:.0f} MiB read, {full['data_added'] / mib:.1f} MiB added"),
        ("incremental backup, one file changed", incremental_seconds, incremental_seconds,
         f"{incremental['data_added'] / 1024:.0f} KiB added, {incremental['files_changed']} files changed; {snapshots} snapshots"),
        ("restore onto a fresh host (its deploy otherwise converged)", restore_seconds, restore_seconds, f"{restored} of 500 homes back"),
        ("floor: `pyinfra INV exec -- true`", median["floor"], min(samples["floor"]), ""),
        ("no-op re-run with backups, 10 users", median["noop 10"], min(samples["noop 10"]), f"{median['noop 10'] / median['floor']:.2f}x floor"),
        ("no-op re-run with backups, 500 users", median["noop 500"], min(samples["noop 500"]), f"{median['noop 500'] / median['noop 10']:.2f}x 10 users"),
    ]
    return table("Backup and restore (issue 9)", rows, "Backups, restore and no-op runs on Debian 13 test hosts; the restic repository is "
                 "a local path on the runner's disk. Backups and the restore: one run each.")
