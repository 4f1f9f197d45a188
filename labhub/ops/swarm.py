"""Docker Swarm: the hub's engine as the manager, workers joined with a token read from it
during the run (never stored, printed or put on a command line), node labels, the overlay
network, and nodes that left the lab drained and removed."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Mapping, Sequence

from pyinfra.api import FactBase, FunctionCommand, OperationError, StringCommand, operation

from labhub.config.swarm import NODE_LABEL
from labhub.ops import facts
from labhub.ops.shell import q

SWARM_PORT = 2377
JOIN_REQUEST = "/run/labhub/swarm-join.json"  # the join request, token inside: root-only, removed at once
SWARM_STATE = "/var/lib/docker/swarm/state.json"  # the engine's swarm membership, once it has one
DRAIN_SECONDS = 120  # how long a removed node's servers get to stop before it leaves
READY_SECONDS = 60  # how long a node of the lab may take to answer the swarm (its Docker just started)
# Every node as the Engine API describes it, one JSON object a line (parse_node).
NODES = "docker node ls -q | xargs -r docker node inspect --format '{{json .}}'"
# The engine's own API where curl is there (the hub and workers install it): a tenth of the
# docker CLI's CPU, which starts each of its plugins for `docker info`; the CLI before then.
ENGINE_API = (
    "if command -v curl >/dev/null 2>&1; then "
    "api() { curl -sf --unix-socket /var/run/docker.sock \"http://localhost$1\" && echo; }; "
    "info() { api /info; }; nodes() { api /nodes; }; network() { api \"/networks/$1\"; }; "
    "else info() { docker info --format '{{json .}}'; }; nodes() { %s; }; "
    "network() { docker network inspect --format '{{json .}}' \"$1\" 2>/dev/null; }; fi; " % NODES
)


class SwarmState(FactBase):
    """This engine's swarm state; on a manager also every node (ID, inventory name from its
    engine label, labels, availability, state) and the overlay network's driver."""

    def command(self, network: str | None = None) -> str:
        return (
            # Without state.json the engine was never in a swarm (or left it): no question to
            # Docker, which costs a run of a one-server lab, or fails on a host without Docker yet.
            f"[ -e {SWARM_STATE} ] || exit 0; {ENGINE_API}"
            "s=$(info) || exit 1; echo '%info'; printf '%s\\n' \"$s\"; echo '%nodes'; "
            "case \"$s\" in *'\"ControlAvailable\":true'*) nodes;; esac; echo '%network'; "
            + (f"network {q(network)}; " if network else "")
            + "true"
        )

    @staticmethod
    def default():
        return SwarmState().process([])  # never in a swarm

    def process(self, output):
        found, section = {"info": [], "nodes": [], "network": []}, None
        for line in output:
            if line.startswith("%"):
                section = line[1:]
            elif section in found and line.strip():
                value = json.loads(line)
                found[section].extend(value if isinstance(value, list) else [value])
        swarm = (found["info"][0].get("Swarm") or {}) if found["info"] else {}
        network = found["network"][0] if found["network"] else None
        return {
            "state": swarm.get("LocalNodeState") or "inactive",
            "manager": bool(swarm.get("ControlAvailable")),
            "managers": [m.get("Addr", "") for m in swarm.get("RemoteManagers") or []],
            "nodes": [node_of(node) for node in found["nodes"]],
            "network": {"driver": network.get("Driver"), "attachable": bool(network.get("Attachable"))} if network else None,
        }


def node_of(node: dict) -> dict:
    """A node as the Engine API describes it: ID, inventory name (its engine label NODE_LABEL),
    labels, availability, state, hostname, created."""
    description, spec = node.get("Description") or {}, node.get("Spec") or {}
    return {"id": node["ID"], "name": ((description.get("Engine") or {}).get("Labels") or {}).get(NODE_LABEL),
            "labels": spec.get("Labels") or {}, "availability": spec.get("Availability"), "state": (node.get("Status") or {}).get("State"),
            "hostname": description.get("Hostname"), "created": node.get("CreatedAt")}


def parse_node(line: str) -> dict:
    """One line of NODES."""
    return node_of(json.loads(line))


@operation()
def manager(advertise_address: str, network: str):
    """This engine is the swarm's manager (`docker swarm init` once) and has the attachable
    overlay network the hub and members' servers share."""
    now = facts.get(SwarmState, network=network)
    if now["state"] == "active" and not now["manager"]:
        raise OperationError(
            f"this engine is a worker of another swarm (managers {', '.join(now['managers'])}): the lab's hub must be its manager; "
            "run `docker swarm leave` on it first"
        )
    steps = []
    if now["state"] != "active":
        address = q(advertise_address)
        steps.append(f"docker swarm init --advertise-addr {address} --listen-addr {q(f'{advertise_address}:{SWARM_PORT}')} >/dev/null")
    if now["network"] is None:
        steps.append(f"docker network create --driver overlay --attachable {q(network)} >/dev/null")
    elif now["network"]["driver"] != "overlay" or not now["network"]["attachable"]:
        raise OperationError(f"network {network} exists but is not an attachable overlay network; remove it (`docker network rm {network}`) and run again")
    if steps:
        yield StringCommand(" && ".join(steps))


@operation()
def worker(hub_name: str, hub_address: str, advertise_address: str | None):
    """This engine is a worker of the hub's swarm: joined with a token the hub gives during
    the run, sent to the engine's API in a root-only file."""
    now = facts.get(SwarmState)  # the overlay network is the manager's to make
    wanted = f"{hub_address}:{SWARM_PORT}"
    if now["state"] == "active":
        if now["manager"]:
            raise OperationError(f"this engine manages a swarm of its own; a worker joins the hub's ({hub_name}); run `docker swarm leave --force` on it first")
        if wanted not in now["managers"]:
            raise OperationError(f"this engine is in another swarm (managers {', '.join(now['managers'])}), not the hub's ({wanted}); run `docker swarm leave` on it first")
        return
    yield FunctionCommand(join_swarm, (hub_name, wanted, advertise_address), {})


def join_swarm(state, host, hub_name: str, manager_address: str, advertise_address: str | None) -> bool:
    hub = state.inventory.get_host(hub_name)
    ok, output = hub.run_shell_command(StringCommand("docker swarm join-token -q worker"))
    if not ok:
        raise OperationError(f"the hub ({hub_name}) gave no join token: {output.stderr.strip()}")
    request = {"ListenAddr": f"0.0.0.0:{SWARM_PORT}", "AdvertiseAddr": advertise_address or "", "RemoteAddrs": [manager_address],
               "JoinToken": output.stdout.strip()}
    ok, output = host.run_shell_command(StringCommand(f"install -d -m 700 {JOIN_REQUEST.rsplit('/', 1)[0]}"))
    if not ok or not host.put_file(io.BytesIO(json.dumps(request).encode()), JOIN_REQUEST):
        raise OperationError(f"could not write the join request: {output.stderr.strip()}")
    ok, output = host.run_shell_command(StringCommand(
        f"out=$(curl -sS --unix-socket /var/run/docker.sock -H 'Content-Type: application/json' --data @{JOIN_REQUEST} "
        f"-w '\\n%{{http_code}}' http://localhost/swarm/join 2>&1); rm -f {JOIN_REQUEST}; "
        "[ \"${out##*\n}\" = 200 ] || { echo \"${out%\n*}\" >&2; exit 1; }"
    ))
    if not ok:
        raise OperationError(f"joining the swarm at {manager_address} failed: {output.stderr.strip()}")
    return True


def by_name(nodes: list[dict]) -> dict[str, list[dict]]:
    """The swarm's labhub nodes by inventory name; a node that left and joined again is
    there twice until the manager removes the old one, which stays down."""
    grouped: dict[str, list[dict]] = {}
    for node in nodes:
        if node["name"]:
            grouped.setdefault(node["name"], []).append(node)
    return grouped


def current(entries: list[dict]) -> dict:
    """The node's entry since it last joined (older ones are of times it left)."""
    return max(entries, key=lambda node: node["created"])


def node_changes(nodes: list[dict], wanted: Mapping[str, Mapping[str, str]]) -> list[str]:
    """What differs between the swarm's labhub nodes and the lab's (name -> labels)."""
    found = by_name(nodes)
    changes = [f"{name}: not in the swarm" for name in wanted if name not in found]
    for name, entries in sorted(found.items()):
        node = current(entries)
        if name not in wanted:
            changes.append(f"{name}: in the swarm, no longer in the lab")
            continue
        if len(entries) > 1:
            changes.append(f"{name}: in the swarm {len(entries)} times (it left and joined again)")
        if node["state"] != "ready":
            changes.append(f"{name}: {node['state']} (its engine does not answer the swarm)")
        if node["labels"] != dict(wanted[name]) or node["availability"] != "active":
            changes.append(f"{name}: labels {node['labels']}, {node['availability']}")
    return changes


def run_on(host, command: str) -> str:
    """Run a command in a Python callback (at run time); its error names the command."""
    ok, output = host.run_shell_command(StringCommand(command))
    if not ok:
        raise OperationError(f"{command.split(' --')[0]}: {output.stderr.strip()}")
    return output.stdout


def listed(host) -> dict[str, list[dict]]:
    return by_name([parse_node(line) for line in run_on(host, NODES).splitlines() if line.strip()])


@operation()
def departed(lab: Sequence[str], network: str):
    """On the manager, before anything else of the run: each node the lab no longer has is
    drained (its servers stop; the swarm starts them elsewhere), then removed. First, so that
    a node taken out of the lab has left the swarm before its own engine is set up anew
    (swarm mode refuses live-restore)."""
    now = facts.get(SwarmState, network=network)  # as `manager` reads it: one read for both
    if any(name not in lab for name in by_name(now["nodes"])):
        yield FunctionCommand(drain_departed, (list(lab),), {})


def drain_departed(state, host, lab: list[str]) -> bool:
    for name, entries in sorted(listed(host).items()):
        if name in lab:
            continue
        for node in entries:
            run_on(host, f"docker node update --availability drain {q(node['id'])} >/dev/null")
        deadline = time.monotonic() + DRAIN_SECONDS
        while any(run_on(host, f"docker node ps -q --filter desired-state=running {q(node['id'])}").strip() for node in entries if node["state"] == "ready"):
            if time.monotonic() > deadline:
                raise OperationError(f"node {name} still runs servers {DRAIN_SECONDS} s after it was drained; stop them and run again")
            time.sleep(2)
        for node in entries:
            run_on(host, f"docker node rm --force {q(node['id'])} >/dev/null")
    return True


@operation()
def nodes(wanted: Mapping[str, Mapping[str, str]], network: str):
    """On the manager: each node of the lab ready, active, with exactly its labels (the old
    entry of one that joined again removed)."""
    now = facts.get(SwarmState, network=network)["nodes"]
    if node_changes([node for node in now if node["name"] in wanted], wanted):
        yield FunctionCommand(label_nodes, (dict(wanted),), {})


def label_nodes(state, host, wanted: dict) -> bool:
    found, deadline = listed(host), time.monotonic() + READY_SECONDS
    missing = [name for name in wanted if name not in found]
    if missing:
        raise OperationError(f"node(s) {', '.join(missing)} did not join the swarm (see their own step 'Swarm membership' above)")
    while waiting := [name for name in wanted if current(found[name])["state"] != "ready"]:
        if time.monotonic() > deadline:  # a node whose Docker the deploy just started comes back within seconds
            raise OperationError(f"node(s) {', '.join(waiting)} do not answer the swarm ({current(found[waiting[0]])['state']}): "
                                 "is Docker running there, and are 2377/tcp, 7946/tcp+udp, 4789/udp open between the nodes?")
        time.sleep(3)
        found = listed(host)
    for name, labels in wanted.items():
        node = current(found[name])
        for old in found[name]:
            if old is not node:  # of a time the node left: it may still look ready for a few seconds
                run_on(host, f"docker node rm --force {q(old['id'])} >/dev/null")
        flags = [f"--label-add {q(f'{k}={v}')}" for k, v in sorted(labels.items()) if node["labels"].get(k) != v]
        flags += [f"--label-rm {q(k)}" for k in sorted(node["labels"]) if k not in labels]
        if node["availability"] != "active":
            flags.append("--availability active")
        if flags:
            run_on(host, f"docker node update {' '.join(flags)} {q(node['id'])} >/dev/null")
    return True


@operation()
def left():
    """A host no longer in a swarm lab leaves the swarm it is in (as a worker; a manager is
    left alone: other nodes may depend on it)."""
    now = facts.get(SwarmState)
    if now["state"] == "active" and not now["manager"]:
        yield StringCommand("docker swarm leave >/dev/null")
