"""The hub stack: a fresh converge and the no-op re-run, against the floor; and what the
hub's Docker API proxy adds to a server's start."""

from __future__ import annotations

import json
import statistics
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
        proxied, direct = docker_calls_of_a_start(host)
    finally:
        remove_host(host)
    median = median_table(samples)
    ratio = median["noop"] / median["floor"]
    rows = [
        ("floor: `pyinfra INV exec -- true`", median["floor"], min(samples["floor"]), ""),
        ("fresh converge with the hub stack", fresh, fresh, "once: image archives (1.2 GB) uploaded and loaded, hub image built (pip through the proxy), notebook image built and pushed"),
        ("no-op re-run with the stack in place", median["noop"], min(samples["noop"]), f"{ratio:.2f}x floor (target <= 1.5x)"),
        *start_rows(proxied, direct),
    ]
    added = statistics.median(s for s, _ in proxied) - statistics.median(s for s, _ in direct)
    return table("Hub stack (issues 4, 21 and 25)", rows, f"Target {'met' if ratio <= 1.5 else 'NOT met'}: the whole deploy's no-op is {ratio:.2f}x "
                 "the floor, paired in one run. The whole deploy (Docker, accounts, two shares, hub, registry, one notebook image) on one host. "
                 f"Docker API proxy: {added * 1000:.0f} ms more per server start (target <= 50 ms: {'met' if added <= 0.05 else 'NOT met'}), "
                 "the Docker calls DockerSpawner makes to start a server (version, image, container inspected, created, started, "
                 "inspected) and to stop it, made by tests/harness/docker_api_calls.py from the hub's container through the proxy "
                 "and from the proxy's own container straight to the socket, alternately.")


START_ROUNDS = 5  # alternate batches of each
START_BATCH = 6


def docker_calls_of_a_start(host) -> tuple[list, list]:
    """[start, stop] seconds of each round: through the proxy (from the hub), and straight to
    the engine's socket (from the proxy's container, the one that has it)."""
    script = (Path(__file__).parent.parent / "harness" / "docker_api_calls.py").read_text()
    proxied, direct = [], []
    for _ in range(START_ROUNDS):
        for container, extra, into in (("jupyterhub-hub-1", "", proxied), ("jupyterhub-docker-api-1", " unix", direct)):
            answer = host.exec(f"docker exec -i {container} python3 - carol bench {START_BATCH}{extra}", input=script)
            into.extend(json.loads(answer.stdout))
    return proxied, direct


def start_rows(proxied: list, direct: list) -> list:
    rows = []
    for label, index in (("start", 0), ("stop", 1)):
        for how, samples in (("through the Docker API proxy", proxied), ("straight to the socket", direct)):
            values = [round[index] for round in samples]
            rows.append((f"a server's {label}: its Docker calls, {how}", statistics.median(values), min(values), f"{len(values)} rounds"))
    return rows
