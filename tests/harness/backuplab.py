"""The restore drill's lab: one server, "labserver", with the hub and nightly backups into a
restic repository on a local path, /srv/backup/labhub. That path is a directory of the runner
bind-mounted into the server, standing in for a share of the institute's file server that
every server of the lab mounts: it outlives the server, so a fresh server of the same name
(the reinstall) restores from it."""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.harness import cli
from tests.harness.hosts import TestHost, free_port, remove_host, start_host, write_inventory
from tests.harness.hublab import hub_data
from tests.harness.lab import write_secrets
from tests.harness.snapshots import Snapshot, start_copy

SERVER = "labserver"
REPOSITORY = "/srv/backup/labhub"
BACKUP_PASSWORD = "Drill-Restic-Pw-42!"
POLICY = {"keep_daily": 3, "keep_weekly": 2, "keep_monthly": 2}
RESTIC = "set -a; . /etc/labhub/backup/restic.env; set +a; restic"


def drill_data() -> dict:
    data = {key: value for key, value in hub_data().items() if key not in ("shares", "mount_shares")}
    return {**data, "groups": [{"name": "optics", "members": ["alice"]}], "backup": {"enabled": True, "repository": REPOSITORY, **POLICY}}


@dataclass
class DrillServer:
    host: TestHost
    url: str
    inventory: Path
    outputs: list[str] = field(default_factory=list)  # every run's output, searched for the password

    def deploy(self, *extra: str) -> tuple[cli.Run, dict]:
        run, results = cli.deploy(self.inventory, *extra)
        self.outputs.append(run.output)
        return run, results

    def converge(self, *extra: str) -> dict:
        run, results = self.deploy(*extra)
        assert run.returncode == 0 and results.get("totals", {}).get("error") == 0, run.explain()
        return results

    def backup(self) -> tuple[dict, float]:
        """One run of the nightly unit, now; its last-success record and the seconds it took."""
        started = time.monotonic()
        run = self.host.exec("systemctl start labhub-backup", check=False)
        seconds = time.monotonic() - started
        assert run.returncode == 0, self.host.exec("journalctl -u labhub-backup --no-pager -n 30 -o cat").stdout
        return json.loads(self.host.exec("cat /var/lib/labhub/backup/last-success.json").stdout), seconds

    def snapshots(self) -> list[dict]:
        return json.loads(self.host.exec(f"{RESTIC} snapshots --json --host {SERVER} --tag labhub").stdout)


@contextlib.contextmanager
def drill_server(workdir: Path, image: str | Snapshot, key: Path, repository: Path, suffix: str, before: str = "") -> Iterator[DrillServer]:
    """A server named SERVER with the repository's directory mounted, and the inventory that
    reaches it (the same name and data whichever server it is): a fresh one from the test
    host image, or a copy of a converged one from a snapshot; `before`: commands run on it
    before any deploy (e.g. accounts that shift the UIDs useradd picks)."""
    port = free_port()
    extra = ("-v", f"{repository}:/srv/backup", "-p", f"127.0.0.1:{port}:8000")
    container = f"labhub-test-{os.getpid()}-{SERVER}-{suffix}"
    if isinstance(image, Snapshot):
        host = start_copy(image, SERVER, key, extra_args=extra, container=container)
    else:
        host = start_host(SERVER, image, key, extra_args=extra, container=container)
    try:
        if before:
            host.exec(before)
        inventory = write_inventory(workdir / "drill_hosts.py", [(host, drill_data())])
        write_secrets(inventory, {}, BACKUP_PASSWORD)
        yield DrillServer(host, f"http://127.0.0.1:{port}", inventory)
    finally:
        remove_host(host)
