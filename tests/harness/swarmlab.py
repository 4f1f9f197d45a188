"""A lab of three test hosts as one Docker Swarm: `swarmhub` (the manager, running the hub)
and two workers, on the runner's Docker bridge (their container IPs are the addresses the
swarm advertises). Members' homes are on "the homes share": a directory of the runner
bind-mounted at /home into all three, standing in for a file server's share (CIFS needs a
kernel these containers do not have; the share is in data and fstab, not mounted)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.harness import cli
from tests.harness.engine import run
from tests.harness.hosts import TestHost, free_port, remove_host, start_host, write_inventory
from tests.harness.hublab import FILE_SERVER, SHARE_CREDENTIALS, hub_data
from tests.harness.lab import write_secrets

WORKERS = ("swarmw1", "swarmw2")
MEMBERS = [{"name": "alice", "uid": 2001}, {"name": "bob", "uid": 2002, "admin": True}, {"name": "carol", "uid": 2003}, {"name": "dave", "uid": 2004}]
LABELS = {"swarmhub": {"pool": "a"}, "swarmw1": {"pool": "a"}, "swarmw2": {"pool": "b"}}
CREDENTIALS = {**SHARE_CREDENTIALS, "homes": ("labhomes", "Swarm-Homes-Pw-3!")}


def container_ip(host: TestHost) -> str:
    return run("docker", "inspect", "--format", "{{.NetworkSettings.IPAddress}}", host.container).stdout.strip()


def swarm_data(role: str, address: str, labels: dict, archives: list[str] | None = None, members: list[dict] = MEMBERS) -> dict:
    data = hub_data()
    data.update(
        admins=[{"name": "labadmin", "uid": 1900}],
        users=members,
        shares=[*data["shares"], {"name": "homes", "server": "files.example.org", "share": "homes", "mount_point": "/home", "homes": True}],
        swarm={"role": role, "advertise_address": address, "labels": labels, "cpu_reservation": 0.1, "mem_reservation": "64M"},
    )
    data["hub"] = {**data["hub"], "mem_limit": "512M", "cpu_limit": 0.5}
    if archives is not None:  # a worker needs only the notebook image's base
        data["image_archives"] = archives
    return data


@dataclass
class SwarmLab:
    hosts: dict[str, TestHost]
    addresses: dict[str, str]
    data: dict[str, dict]
    inventory: Path
    homes: Path  # the homes share, as the runner sees it
    url: str
    first_run: dict
    first_run_seconds: float

    @property
    def hub(self) -> TestHost:
        return self.hosts["swarmhub"]

    def write(self, names: list[str] | None = None) -> Path:
        names = names if names is not None else list(self.data)
        return write_inventory(self.inventory, [(self.hosts[name], self.data[name]) for name in names], group="swarm")

    def nodes(self) -> dict[str, dict]:
        """The manager's view: inventory name -> node (state, availability, labels)."""
        from labhub.ops.swarm import NODES, parse_node

        lines = self.hub.exec(NODES).stdout.splitlines()
        return {node["name"]: node for node in map(parse_node, filter(None, lines)) if node["name"]}

    def placement(self) -> dict[str, str]:
        """service name -> the inventory name of the node its running task is on."""
        nodes = self.nodes()
        by_id = {node["id"]: name for name, node in nodes.items()}
        hostnames = {node["hostname"]: name for name, node in nodes.items()}
        lines = self.hub.exec("docker service ls -q --filter name=jupyter- | xargs -r docker service ps --filter desired-state=running "
                              "--format '{{.Name}} {{.Node}} {{.CurrentState}}' 2>/dev/null; true").stdout.splitlines()
        found = {}
        for line in lines:
            task, node, *state = line.split()
            if state and state[0] == "Running":
                found[task.split(".")[0]] = hostnames.get(node, by_id.get(node, node))
        return found


@contextlib.contextmanager
def converged_swarm(workdir: Path, image: str, key: Path, members: list[dict] = MEMBERS) -> Iterator[SwarmLab]:
    homes = workdir / "homes"
    homes.mkdir()
    port = free_port()
    hosts: dict[str, TestHost] = {}
    try:
        shared = ("-v", f"{homes}:/home")
        hosts["swarmhub"] = start_host("swarmhub", image, key, extra_args=(*shared, "-p", f"127.0.0.1:{port}:8000"))
        for name in WORKERS:
            hosts[name] = start_host(name, image, key, extra_args=shared)
        addresses = {name: container_ip(host) for name, host in hosts.items()}
        hub = swarm_data("hub", addresses["swarmhub"], LABELS["swarmhub"], members=members)
        notebook_base = [path for path in hub["image_archives"] if "minimal-notebook" in path]
        data = {"swarmhub": hub, **{name: swarm_data("worker", addresses[name], LABELS[name], notebook_base, members) for name in WORKERS}}
        lab = SwarmLab(hosts, addresses, data, workdir / "swarm_hosts.py", homes, f"http://127.0.0.1:{port}", {}, 0.0)
        write_secrets(lab.write(), CREDENTIALS)
        started = time.monotonic()
        lab.first_run = cli.converge(lab.inventory)
        lab.first_run_seconds = time.monotonic() - started
        for host in hosts.values():  # the shares' "file server", as on the single hub host, on each node
            host.exec(FILE_SERVER)
        yield lab
    finally:
        for host in hosts.values():
            remove_host(host)
