"""The lab page (issue 24): a member's view, one folder of a snapshot listed, a 100 MB folder
restored, the admins' overview; and the whole deploy's no-op with the page on."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from tests.benchmark.common import ROUNDS, floor, median_table, noop, table, timed
from tests.harness import cli
from tests.harness.engine import testhost_image
from tests.harness.hosts import free_port, make_ssh_key, remove_host, start_host, write_inventory
from tests.harness.hubclient import HubUser
from tests.harness.hublab import FILE_SERVER, SHARE_CREDENTIALS, hub_data
from tests.harness.lab import write_secrets

HOME = "/home/jupyter-alice"
WORK = f"""
mkdir -p {HOME}/simulation {HOME}/notebooks
for i in 1 2 3 4; do head -c 26214400 /dev/urandom > {HOME}/simulation/run-$i.bin; done
for i in $(seq 1000); do echo "cell $i" > {HOME}/notebooks/note-$i.ipynb; done
chown -R jupyter-alice: {HOME}/simulation {HOME}/notebooks
"""


def lab_page(workdir: Path) -> str:
    image, key = testhost_image(), make_ssh_key(workdir / "ssh")
    data = {**hub_data(), "backup": {"enabled": True, "repository": "/srv/backup/labhub"}}
    port = free_port()
    host = start_host("bench-lab-page", image, key, extra_args=("-p", f"127.0.0.1:{port}:8000"))
    try:
        inventory = write_inventory(workdir / "lab_page_hosts.py", [(host, data)])
        write_secrets(inventory, SHARE_CREDENTIALS, "Benchmark-Restic-Pw-2")
        cli.converge(inventory)
        host.exec(FILE_SERVER)
        host.exec(WORK)
        alice = HubUser(f"http://127.0.0.1:{port}")
        assert alice.login("alice", "alice-benchmark-pw-1")
        token = alice.create_token("alice")
        bob = HubUser(f"http://127.0.0.1:{port}")
        assert bob.login("bob", "bob-benchmark-pw-1")
        bob_token = bob.create_token("bob")
        host.exec("systemctl start labhub-backup")

        def ask(user, user_token, method, path, body=None):
            status, text = user.request(method, f"/services/lab/api/{path}", body, headers={"Authorization": f"token {user_token}"}, timeout=600)
            assert status == 200, (path, status, text)
            return json.loads(text)

        snapshot = ask(alice, token, "GET", "members/alice")["snapshots"][0]["id"]
        samples: dict[str, list[float]] = {name: [] for name in ("floor", "noop", "drift", "member", "list 4", "list 1000", "restore", "admin")}

        def drift_check() -> None:
            with tempfile.TemporaryDirectory() as fresh:  # cold, as a nightly run is: no ssh connection left over
                run = cli.drift_check(inventory, env={"TMPDIR": fresh})
            assert run.returncode == 0, run.explain()

        drift_check()  # the first one reads the hub image's schema head, kept for the nights after
        for _ in range(ROUNDS):
            samples["floor"].append(timed(lambda: floor(inventory)))
            samples["noop"].append(timed(lambda: noop(inventory)))
            samples["drift"].append(timed(drift_check))
            samples["member"].append(timed(lambda: ask(alice, token, "GET", "members/alice")))
            samples["list 4"].append(timed(lambda: ask(alice, token, "GET", f"members/alice/snapshots/{snapshot}/files?path=simulation")))
            samples["list 1000"].append(timed(lambda: ask(alice, token, "GET", f"members/alice/snapshots/{snapshot}/files?path=notebooks")))
            samples["restore"].append(timed(lambda: ask(alice, token, "POST", "members/alice/restores", {"snapshot": snapshot, "path": "simulation"})))
            host.exec(f"rm -rf {HOME}/restored")  # the next restore is not refused as already there
            samples["admin"].append(timed(lambda: ask(bob, bob_token, "GET", "admin")))
    finally:
        remove_host(host)
    median = median_table(samples)
    best = {name: min(values) for name, values in samples.items()}
    rows = [
        ("a member's view: her home's use (du, no quota), limits, the snapshots", median["member"], best["member"], "over HTTP through the hub's proxy"),
        ("one folder of a snapshot listed (4 files)", median["list 4"], best["list 4"], "restic ls"),
        ("one folder of a snapshot listed (1000 files)", median["list 1000"], best["list 1000"], "restic ls"),
        ("a 100 MB folder restored into ~/restored/", median["restore"], best["restore"], "4 files of 25 MiB; restic, then copied as her"),
        ("the admins' overview (3 members)", median["admin"], best["admin"], "hub API and the helper at once"),
        ("floor: `pyinfra INV exec -- true`", median["floor"], best["floor"], ""),
        ("no-op re-run, the whole stack with the lab page and backups", median["noop"], best["noop"], f"{median['noop'] / median['floor']:.2f}x floor"),
        ("drift check of that host (plan and host checks)", median["drift"], best["drift"], f"{median['drift'] / median['noop']:.2f}x its no-op (target <= 2x)"),
    ]
    return table("Lab page (issue 24)", rows, "Requests with alice's (and admin bob's) API token to /services/lab/api/, on a hub test host "
                 "with backups into a local restic repository holding one snapshot. A restore counts against the rate limit "
                 f"(10 an hour), so {ROUNDS} rounds fit.")
