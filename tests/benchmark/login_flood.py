"""A flood of wrong passwords against the hub's login (issue 26): the hub's CPU and its API
latency for a logged-in member meanwhile, with JupyterHub's stock FirstUseAuthenticator
(bcrypt on the event loop, no throttle), with labhub's hashing in a worker thread but the
throttle out of the way, and as labhub ships it."""

from __future__ import annotations

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

FLOOD_SECONDS, ATTEMPTS, CLIENTS = 10, 100, 10  # 100 wrong passwords in 10 s (issue 26), from 10 clients
STOCK = 'c.JupyterHub.authenticator_class = "firstuseauthenticator.FirstUseAuthenticator"'
MEMBERS = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"]


def login_flood(workdir: Path) -> str:
    image, key = testhost_image(), make_ssh_key(workdir / "ssh")
    data = {**hub_data(), "users": MEMBERS, "shares": []}
    host = start_host("bench-logins", image, key, extra_args=("-p", "127.0.0.1::8000"))
    results = {}
    try:
        inventory = write_inventory(workdir / "login_hosts.py", [(host, data)])
        write_secrets(inventory, SHARE_CREDENTIALS)
        url = "http://127.0.0.1:" + run("docker", "port", host.container, "8000/tcp").stdout.split()[0].rsplit(":", 1)[1]
        variants = (  # as shipped first: its unclaimed names stay unclaimed (the open variants' guesses claim them)
            ("labhub as shipped: setup codes, worker thread and throttle (5 per name, 20 per address in 300 s)", 5, False, "setup-code"),
            ("labhub: bcrypt in a worker thread, throttle out of the way, first login open", 100000, False, "open"),
            # Last: a converge that only restores jupyterhub_config.py would not restart the hub.
            ("stock FirstUseAuthenticator: bcrypt on the event loop, no throttle, first login open", 100000, True, "open"),
        )
        for label, limit, stock, first_login in variants:
            data["hub"] = {**data["hub"], "login": {"failed_limit": limit, "first_login": first_login}}
            write_inventory(inventory, [(host, data)])
            cli.converge(inventory)
            if stock:  # the hub's authenticator as it was before issue 26
                host.exec(f"sed -i 's|^c.JupyterHub.authenticator_class = guarded(.*|{STOCK}|' /opt/jupyterhub/jupyterhub_config.py"
                          " && docker restart jupyterhub-hub-1 >/dev/null")
            HubLike(url).wait()
            results[label] = flood(url, host)
    finally:
        remove_host(host)
    rows = []
    for label, found in results.items():
        rows += [
            (f"{label}: hub CPU during the flood (cores)", found["cpu"], found["cpu"], f"{found['answers']}"),
            (f"{label}: a member's API call meanwhile, median", statistics.median(found["latencies"]), min(found["latencies"]),
             f"maximum {max(found['latencies']):.2f} s over {len(found['latencies'])} calls"),
        ]
    return table("Login flood (issue 26)", rows, f"{ATTEMPTS} wrong passwords in {FLOOD_SECONDS} s from {CLIENTS} clients, for "
                 f"{len(MEMBERS)} listed names (7 not yet claimed), one address; a logged-in member asks the hub's API every 0.1 s "
                 "meanwhile. CPU: the hub container's processes' CPU time over the flood's wall time. Answers: 200 is a login that "
                 "got in (with the first login open, a guess claims an unclaimed name), 403 a wrong password or no setup code, "
                 "429 throttled.", method="one flood per variant")


class HubLike:
    def __init__(self, url: str):
        self.url = url

    def wait(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while HubUser(self.url).request("GET", "/hub/health")[0] != 200:
            assert time.monotonic() < deadline, "the hub did not come back"
            time.sleep(0.5)


def flood(url: str, host) -> dict:
    member = HubUser(url)
    if not member.login("alice", "alice-flood-bench-1"):  # her first login, with setup codes on
        code = host.exec("docker exec jupyterhub-hub-1 python3 /srv/jupyterhub/login_admin.py setup-code alice").stdout.split()[1]
        assert member.login("alice", "alice-flood-bench-1", code)
    member.create_token("alice")

    def cpu_usec() -> int:
        """User + system CPU of the hub container's processes (its PID namespace; /proc/PID/stat
        counts every thread's), in µs: the test host's nested cgroups do not show cpu.stat."""
        ticks = host.exec("docker exec jupyterhub-hub-1 sh -c 'cat /proc/[0-9]*/stat' | awk '{print $14 + $15}'").stdout.split()
        return sum(int(tick) for tick in ticks) * 10000  # CLK_TCK is 100

    latencies: list[float] = []
    answers: dict[int, int] = {}
    done = threading.Event()

    def watch() -> None:
        watcher = HubUser(url)
        watcher.token = member.token
        while not done.is_set():
            began = time.perf_counter()
            status, _ = watcher.api("GET", "/hub/api/user")
            latencies.append(time.perf_counter() - began if status == 200 else float("inf"))
            time.sleep(0.1)

    def guess(client: int) -> None:
        for n in range(ATTEMPTS // CLIENTS):
            due = start + (n * CLIENTS + client) * FLOOD_SECONDS / ATTEMPTS
            time.sleep(max(0.0, due - time.perf_counter()))
            status = login_status(url, MEMBERS[(n + client) % len(MEMBERS)], f"wrong-{client}-{n}")
            answers[status] = answers.get(status, 0) + 1

    before = cpu_usec()
    watcher = threading.Thread(target=watch)
    start = time.perf_counter()
    watcher.start()
    clients = [threading.Thread(target=guess, args=(client,)) for client in range(CLIENTS)]
    for client in clients:
        client.start()
    for client in clients:
        client.join()
    wall = time.perf_counter() - start
    done.set()
    watcher.join()
    return {"cpu": (cpu_usec() - before) / 1e6 / wall, "latencies": latencies, "answers": f"answers {dict(sorted(answers.items()))} in {wall:.1f} s"}


def login_status(url: str, name: str, password: str) -> int:
    import re
    import urllib.parse

    user = HubUser(url)
    status, page = user.request("GET", "/hub/login")
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page).group(1)
    form = urllib.parse.urlencode({"username": name, "password": password, "_xsrf": xsrf}).encode()
    return user.request("POST", "/hub/login", form, {"Content-Type": "application/x-www-form-urlencoded"})[0]
