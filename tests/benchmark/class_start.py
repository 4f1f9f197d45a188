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


def class_start(workdir: Path) -> str:
    """20 members press "Start" at the same moment (the first minutes of a class): the time
    until every server is ready, the hub's API latency meanwhile, and its health after.
    CLASS_ROUNDS classes on one host, every server stopped between them; each is reported."""
    members = [f"student{n:02d}" for n in range(20)]
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
        classes = []
        for _ in range(CLASS_ROUNDS):
            classes.append(one_class(url, users))
            stop_servers(users)
        healthy = HubUser(url).request("GET", "/hub/health")[0] == 200
    finally:
        remove_host(host)
    ready = [one["all_ready"] for one in classes]
    medians = [statistics.median(one["latencies"]) for one in classes]
    worsts = [max(one["latencies"]) for one in classes]

    def each(values: list[float]) -> str:
        return ", ".join(f"{value:.2f}" for value in values)

    rows = [
        ("20 servers started at once: all ready", statistics.median(ready), min(ready),
         f"{CLASS_ROUNDS} classes: {each(ready)} s; ready {[len(one['ready']) for one in classes]} of 20; "
         f"start requests refused: {sum(len(one['refused']) for one in classes)} {[r for one in classes for r in one['refused']][:2]}"),
        ("hub API latency meanwhile, median", statistics.median(medians), min(medians),
         f"each class: {each(medians)} s; {sum(len(one['latencies']) for one in classes)} requests, every 0.2 s"),
        ("hub API latency meanwhile, maximum", statistics.median(worsts), min(worsts),
         f"each class: {each(worsts)} s; hub healthy afterwards: {'yes' if healthy else 'NO'}"),
    ]
    met = (max(ready) <= 53 and max(medians) <= 0.060 and max(worsts) <= 0.448 and healthy
           and all(len(one["ready"]) == 20 for one in classes))
    return table("Class start (issue 13)", rows, f"Target {'met' if met else 'NOT met'} in every class (all 20 ready within 53 s, API "
                 "latency median <= 60 ms and maximum <= 448 ms, as first measured outside the project). One Debian 13 test "
                 "host, 2 cores shared with the runner.", method=f"median and best of {CLASS_ROUNDS} classes on one host")


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
