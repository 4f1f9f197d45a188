"""Host layer: the floor, fresh converges, and no-op re-runs with 10 users, 500 users and
500 users in 50 research groups."""

from __future__ import annotations

from pathlib import Path

from tests.benchmark.common import ROUNDS, floor, lab_data, median_table, noop, table, timed
from tests.harness import cli
from tests.harness.engine import testhost_image
from tests.harness.hosts import make_ssh_key, remove_host, start_host, write_inventory


def host_layer(workdir: Path) -> str:
    image, key = testhost_image(), make_ssh_key(workdir / "ssh")
    labs = {10: lab_data(10), 500: lab_data(500), "500g": lab_data(500, groups=50)}
    hosts = {n: start_host(f"bench-{n}", image, key) for n in labs}
    try:
        inventories = {n: write_inventory(workdir / f"bench_{n}.py", [(hosts[n], labs[n])]) for n in hosts}
        fresh = {n: timed(lambda n=n: cli.converge(inventories[n])) for n in hosts}
        samples: dict[str, list[float]] = {"floor": [], "noop 10": [], "noop 500": [], "noop 500g": []}
        for _ in range(ROUNDS):  # interleaved, so drift in machine load hits all alike
            samples["floor"].append(timed(lambda: floor(inventories[10])))
            samples["noop 10"].append(timed(lambda: noop(inventories[10])))
            samples["noop 500"].append(timed(lambda: noop(inventories[500])))
            samples["noop 500g"].append(timed(lambda: noop(inventories["500g"])))
    finally:
        for host in hosts.values():
            remove_host(host)

    median = median_table(samples)
    ratio_10 = median["noop 10"] / median["floor"]
    ratio_500 = median["noop 500"] / median["noop 10"]
    ratio_groups = median["noop 500g"] / median["noop 10"]
    rows = [
        ("floor: `pyinfra INV exec -- true`", median["floor"], min(samples["floor"]), ""),
        ("fresh converge, 10 users (Docker from Debian, accounts)", fresh[10], fresh[10], "once"),
        ("fresh converge, 500 users", fresh[500], fresh[500], "once"),
        ("no-op re-run, 10 users", median["noop 10"], min(samples["noop 10"]), f"{ratio_10:.2f}x floor (target <= 1.3x)"),
        ("no-op re-run, 500 users", median["noop 500"], min(samples["noop 500"]), f"{ratio_500:.2f}x 10 users (target <= 1.2x)"),
        ("fresh converge, 500 users in 50 groups", fresh["500g"], fresh["500g"], "once"),
        ("no-op re-run, 500 users in 50 groups", median["noop 500g"], min(samples["noop 500g"]), f"{ratio_groups:.2f}x 10 users (target <= 1.2x)"),
    ]
    verdict = "met" if ratio_10 <= 1.3 and ratio_500 <= 1.2 and ratio_groups <= 1.2 else "NOT met"
    return table("Host layer (issues 2 and 21)", rows, f"Targets {verdict}: no-op with 10 users {ratio_10:.2f}x the floor, "
                 f"with 500 users {ratio_500:.2f}x the 10-user time, with 500 users in 50 groups {ratio_groups:.2f}x.")
