"""Past one server: the lab's servers as one Docker Swarm. The hub is the swarm's manager and
runs JupyterHub with SwarmSpawner; workers only run members' servers. Every node has the same
host layer (Docker, the same jupyter-* accounts with the same fixed UIDs, the same shares),
and members' homes live on one share that every node mounts at /home."""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import Field, field_validator

from labhub.config.common import Model, check_labels
from labhub.config.hub import check_memory

SWARM_NETWORK = "labhub-swarm"  # the attachable overlay network the hub and members' servers share
NODE_LABEL = "labhub.node"  # engine label (daemon.json) naming a node by its inventory name


class Swarm(Model):
    """This host's place in a lab of several servers (none: a lab of one server)."""

    role: Literal["hub", "worker"] | None = Field(
        None, description="'hub': the swarm's manager, runs JupyterHub (one per lab); 'worker': runs members' servers; "
        "none: a one-server lab. A host whose role is removed is drained, then leaves the swarm",
    )
    advertise_address: str | None = Field(
        None, description="the IP address the other nodes reach this one at (ports 2377/tcp, 7946/tcp+udp, 4789/udp); "
        "required on the hub, none on a worker: Docker picks its default route's address",
    )
    labels: dict[str, str] = Field(
        default_factory=dict, description="node labels, e.g. {'gpu': 'a100'}: groups and images ask for them with node_labels "
        "(exactly these are set; 'labhub.*' are the deploy's own)",
    )
    cpu_reservation: float = Field(0.25, description="CPUs the swarm reserves for each member's server when it places it (a node without them free gets none)")
    mem_reservation: str = Field("512M", description="memory the swarm reserves for each member's server when it places it")

    @field_validator("advertise_address")
    @classmethod
    def _address(cls, address: str | None) -> str | None:
        if address is not None:
            try:
                ipaddress.ip_address(address)
            except ValueError:
                raise ValueError("must be an IP address, e.g. '10.1.2.3' (the one the other nodes reach this host at)") from None
        return address

    _labels = field_validator("labels")(check_labels)

    @field_validator("cpu_reservation")
    @classmethod
    def _cpu(cls, cpus: float) -> float:
        if not 0 <= cpus <= 512:
            raise ValueError("must be a number of CPUs between 0 and 512, e.g. 0.5")
        return cpus

    _memory = field_validator("mem_reservation")(check_memory)


def swarm_problems(configs: dict) -> list[str]:
    """What is wrong with the lab's hosts together (name -> LabHost): one hub among the swarm's
    nodes, and on every node the same accounts, groups and shares as on the hub."""
    nodes = {name: config for name, config in configs.items() if config.swarm.role}
    if not nodes:
        return []
    hubs = sorted(name for name, config in nodes.items() if config.swarm.role == "hub")
    if len(hubs) != 1:
        found = f"{len(hubs)} ({', '.join(hubs)})" if hubs else "none"
        return [f"swarm: a swarm lab has exactly one host with swarm.role 'hub' (its manager, running JupyterHub); found {found} among {', '.join(sorted(nodes))}"
                + ("; with --limit, include the hub" if not hubs else "")]
    hub = nodes[hubs[0]]

    def layer(config) -> dict:
        return {
            "users": sorted((u.name, u.uid, u.group) for u in config.users),
            "admins": sorted((a.name, a.uid) for a in config.admins),
            "groups": sorted((g.name, g.gid, tuple(sorted(g.members))) for g in config.groups),
            "shares": sorted((s.name, s.source, s.mount_point) for s in config.shares),
        }

    expected, problems = layer(hub), []
    for name, config in sorted(nodes.items()):
        for part, value in layer(config).items():
            if value != expected[part]:
                problems.append(f"host '{name}': {part} differ from the hub's ({hubs[0]}): every node of a swarm lab needs the same {part} (put them in group_data/all.py)")
    return problems
