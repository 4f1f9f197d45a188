"""The hub stack: a fresh converge and the no-op re-run, against the floor."""

from __future__ import annotations

from pathlib import Path

from tests.benchmark.common import ROUNDS, floor, median_table, noop, table, timed
from tests.harness import cli
from tests.harness.engine import testhost_image
from tests.harness.hosts import make_ssh_key, remove_host, start_host, write_inventory
from tests.harness.hublab import SHARE_CREDENTIALS, hub_data
from tests.harness.lab import write_secrets


def hub(workdir: Path) -> str:

    image, key = testhost_image(), make_ssh_key(workdir / "ssh")
    data = hub_data()  # builds the image archives first (cached), outside the timing
    host = start_host("bench-hub", image, key)
    try:
        inventory = write_inventory(workdir / "hub_hosts.py", [(host, data)])
        write_secrets(inventory, SHARE_CREDENTIALS)
        fresh = timed(lambda: cli.converge(inventory))
        samples: dict[str, list[float]] = {"floor": [], "noop": []}
        for _ in range(ROUNDS):
            samples["floor"].append(timed(lambda: floor(inventory)))
            samples["noop"].append(timed(lambda: noop(inventory)))
    finally:
        remove_host(host)
    median = median_table(samples)
    ratio = median["noop"] / median["floor"]
    rows = [
        ("floor: `pyinfra INV exec -- true`", median["floor"], min(samples["floor"]), ""),
        ("fresh converge with the hub stack", fresh, fresh, "once: image archives (1.2 GB) uploaded and loaded, hub image built (pip through the proxy), notebook image built and pushed"),
        ("no-op re-run with the stack in place", median["noop"], min(samples["noop"]), f"{ratio:.2f}x floor (target <= 1.5x)"),
    ]
    return table("Hub stack (issues 4 and 21)", rows, f"Target {'met' if ratio <= 1.5 else 'NOT met'}: the whole deploy's no-op is {ratio:.2f}x "
                 "the floor, paired in one run. The whole deploy (Docker, accounts, two shares, hub, registry, one notebook image) on one host.")
