"""Drift check: one host and three hosts, against a no-op converge of one; and one host with
alerts and a heartbeat on and nothing to report (a quiet night), against it without."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from tests.benchmark.common import ROUNDS, lab_data, median_table, noop_limited, table, timed
from tests.harness import cli
from tests.harness.engine import testhost_image
from tests.harness.hosts import make_ssh_key, remove_host, start_host, write_inventory
from tests.harness.receivers import HttpReceiver, alert_settings


def drift(workdir: Path) -> str:
    image, key = testhost_image(), make_ssh_key(workdir / "ssh")
    receiver = HttpReceiver()  # the chat's webhook and the heartbeat's server, on the loopback
    hosts = [start_host(f"drift-{n}", image, key) for n in range(3)]
    try:
        inventory = write_inventory(workdir / "drift_hosts.py", [(host, lab_data(10)) for host in hosts])
        cli.converge(inventory)
        one = hosts[0].name
        samples: dict[str, list[float]] = {"noop one": [], "drift one": [], "drift three": [], "alerts one": []}
        settings = alert_settings(workdir / "alerts.json", {"chat": f"json://127.0.0.1:{receiver.port}/chat"})
        settings.write_text(json.dumps({**json.loads(settings.read_text()), "heartbeat": {"style": "healthchecks", "url": receiver.url("/ping/drift")}}))

        def drift_check(*args: str) -> None:
            # Cold, as a nightly run is: no ssh connection left over from an earlier run.
            with tempfile.TemporaryDirectory() as fresh:
                run = cli.drift_check(inventory, *args, env={"TMPDIR": fresh})
            assert run.returncode == 0, run.explain()

        for _ in range(ROUNDS):
            samples["noop one"].append(timed(lambda: noop_limited(inventory, one)))
            samples["drift one"].append(timed(lambda: drift_check("--host", one)))
            samples["drift three"].append(timed(lambda: drift_check()))
            samples["alerts one"].append(timed(lambda: drift_check("--host", one, "--alerts", str(settings))))
        assert not receiver.json_bodies("/chat") and receiver.paths().count("/ping/drift") == ROUNDS, "quiet nights: heartbeats only"
    finally:
        for host in hosts:
            remove_host(host)
        receiver.close()
    median = median_table(samples)
    ratio_one = median["drift one"] / median["noop one"]
    ratio_three = median["drift three"] / median["drift one"]
    extra = median["alerts one"] - median["drift one"]
    rows = [
        ("no-op converge of one host (10 users)", median["noop one"], min(samples["noop one"]), ""),
        ("drift check of that host", median["drift one"], min(samples["drift one"]), f"{ratio_one:.2f}x the no-op (target <= 2x)"),
        ("drift check of three hosts", median["drift three"], min(samples["drift three"]), f"{ratio_three:.2f}x one host (target <= 1.5x)"),
        ("drift check of one host, alerts and a heartbeat on, nothing to report", median["alerts one"], min(samples["alerts one"]),
         f"{extra:+.2f} s against the same check without (target <= +1 s)"),
    ]
    verdict = "met" if ratio_one <= 2 and ratio_three <= 1.5 and extra <= 1 else "NOT met"
    return table("Drift check (issues 5, 21 and 22)", rows, f"Targets {verdict}: one host {ratio_one:.2f}x its no-op converge, three hosts "
                 f"{ratio_three:.2f}x one, a quiet night with alerts {extra:+.2f} s.")
