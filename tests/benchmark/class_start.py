"""A class start: members press "Start" at the same moment; the time until all are ready,
the hub's API latency meanwhile, and its health after."""

from __future__ import annotations

import json
import statistics
import threading
import time
from pathlib import Path

from tests.benchmark.common import table
from tests.harness import cli
from tests.harness.engine import run, testhost_image
from tests.harness.hosts import make_ssh_key, remove_host, start_host, write_inventory
from tests.harness.hubclient import HubUser
from tests.harness.hublab import SHARE_CREDENTIALS, hub_data
from tests.harness.lab import write_secrets

CLASS_ROUNDS = 3  # classes started one after another on the same host: one run moves by 15 s on 2 cores
# Class size -> (all ready within s, API latency median and maximum within s): the class of 20
# as first measured outside the project (issue 13), the class of 50 as issue 21 asks.
TARGETS = {20: (53, 0.060, 0.448), 50: (60, 0.060, 0.5)}


def class_start(workdir: Path) -> str:
    """A class's members press "Start" at the same moment (the first minutes of a class): the
    time until every server is ready, the hub's API latency meanwhile, and its health after.
    A class of 20, then one of 50, CLASS_ROUNDS times each on one host, every server stopped
    between them; each class is reported."""
    members = [f"student{n:02d}" for n in range(max(TARGETS))]
    image, key = testhost_image(), make_ssh_key(workdir / "ssh")
    data = {**hub_data(), "users": members, "shares": []}
    host = start_host("bench-class", image, key, extra_args=("-p", "127.0.0.1::8000"))
    try:
        inventory = write_inventory(workdir / "class_hosts.py", [(host, data)])
        write_secrets(inventory, SHARE_CREDENTIALS)
        cli.converge(inventory)
        url = "http://127.0.0.1:" + run("docker", "port", host.container, "8000/tcp").stdout.split()[0].rsplit(":", 1)[1]
        users = {}
        for name in members:  # first logins set the passwords; each gets an API token
            users[name] = HubUser(url)
            assert users[name].login(name, f"{name}-password-1")
            users[name].create_token(name)
        classes: dict[int, list[dict]] = {}
        for size in TARGETS:
            for _ in range(CLASS_ROUNDS):
                classes.setdefault(size, []).append(one_class(url, {name: users[name] for name in members[:size]}))
                stop_servers(users)
        healthy = HubUser(url).request("GET", "/hub/health")[0] == 200
    finally:
        remove_host(host)
    rows, verdicts = [], []
    for size, (ready_within, median_within, worst_within) in TARGETS.items():
        ready = [one["all_ready"] for one in classes[size]]
        medians = [statistics.median(one["latencies"]) for one in classes[size]]
        worsts = [max(one["latencies"]) for one in classes[size]]
        rows += [
            (f"{size} servers started at once: all ready", statistics.median(ready), min(ready),
             f"{CLASS_ROUNDS} classes: {each(ready)} s; ready {[len(one['ready']) for one in classes[size]]} of {size}; start requests "
             f"refused: {sum(len(one['refused']) for one in classes[size])} {[r for one in classes[size] for r in one['refused']][:2]}"),
            (f"class of {size}: hub API latency meanwhile, median", statistics.median(medians), min(medians),
             f"each class: {each(medians)} s; {sum(len(one['latencies']) for one in classes[size])} requests, every 0.2 s"),
            (f"class of {size}: hub API latency meanwhile, maximum", statistics.median(worsts), min(worsts),
             f"each class: {each(worsts)} s"),
        ]
        met = (max(ready) <= ready_within and max(medians) <= median_within and max(worsts) <= worst_within
               and all(len(one["ready"]) == size for one in classes[size]))
        verdicts.append(f"class of {size}: {'met' if met else 'NOT met'} in every class (all ready within {ready_within} s, API latency "
                        f"median <= {median_within * 1000:.0f} ms and maximum <= {worst_within * 1000:.0f} ms)")
    return table("Class start (issues 13 and 21)", rows, f"Targets: {'; '.join(verdicts)}. Hub healthy afterwards: {'yes' if healthy else 'NO'}. "
                 "The class of 20's targets are as first measured outside the project. One Debian 13 test host, 2 cores shared with "
                 "the runner.", method=f"median and best of {CLASS_ROUNDS} classes of each size on one host")


def each(values: list[float]) -> str:
    return ", ".join(f"{value:.2f}" for value in values)


def one_class(url: str, users: dict) -> dict:
    """All members start their servers at once; a watcher asks the hub every 0.2 s meanwhile."""
    members = list(users)
    started_before = [name for name in members if json.loads(users[name].api("GET", f"/hub/api/users/{name}")[1])["servers"]]
    assert not started_before, f"servers already started before the class start: {started_before}"
    latencies: list[float] = []
    done = threading.Event()

    def watch() -> None:  # what every open browser tab does meanwhile: ask the hub
        watcher = HubUser(url)  # its own connection: a HubUser is not shared between threads
        watcher.token = users[members[0]].token
        while not done.is_set():
            started = time.perf_counter()
            status, _ = watcher.api("GET", "/hub/api/user")
            latencies.append(time.perf_counter() - started if status == 200 else float("inf"))
            time.sleep(0.2)

    refused: list[str] = []

    def start_server(name: str) -> None:
        try:
            # as the browser's spawn-pending page: it waits on the progress stream
            users[name].start_server_following_progress(name, timeout=600)
        except AssertionError as error:  # recorded, and the server must still end up ready
            refused.append(f"{name}: {error}")

    watcher = threading.Thread(target=watch)
    threads = [threading.Thread(target=start_server, args=(name,)) for name in members]
    start = time.perf_counter()
    watcher.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    all_ready = time.perf_counter() - start
    done.set()
    watcher.join()
    ready = [name for name in members if json.loads(users[name].api("GET", f"/hub/api/users/{name}")[1])["servers"].get("", {}).get("ready")]
    return {"all_ready": all_ready, "latencies": latencies, "ready": ready, "refused": refused}


def stop_servers(users: dict, timeout: float = 180) -> None:
    """Every member's server stopped (and its container gone), then a moment for the host to settle."""
    for name, user in users.items():
        user.api("DELETE", f"/hub/api/users/{name}/server")
    deadline = time.monotonic() + timeout
    while any(json.loads(user.api("GET", f"/hub/api/users/{name}")[1])["servers"] for name, user in users.items()):
        assert time.monotonic() < deadline, f"servers still running {timeout} s after they were stopped"
        time.sleep(1)
    time.sleep(5)
