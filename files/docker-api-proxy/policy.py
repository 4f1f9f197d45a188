"""Which Docker API calls the hub may make: exactly what starting, watching and removing the
lab's servers needs (DockerSpawner; SwarmSpawner in a swarm lab), for the members labhub.json
lists, as files/jupyterhub_config.py would make them. Everything else is refused, and so is
anything this file cannot decide: it fails closed.

`decide()` returns the rule that allows a call or raises Refused with the rule it broke.
"""

from __future__ import annotations

import grp
import json
import pwd
import re
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote

PREFIX = "jupyter-"  # DockerSpawner's container and service names: jupyter-<member>[--<server>]
NO_NEW_PRIVILEGES = ["no-new-privileges:true"]
MASK_OPTIONS = "ro,size=4k,mode=0700"  # the cover of another group's folder (jupyterhub_config.py)
# What a server's HostConfig may carry besides the settings checked one by one below; any
# other key with a value is refused.
HARMLESS_HOST_CONFIG = {"AutoRemove", "CpuShares", "CpuPeriod", "LogConfig", "ShmSize", "Init", "ReadonlyRootfs", "OomScoreAdj"}
# The same for a service's container spec.
HARMLESS_CONTAINER_SPEC = {"Image", "Args", "Command", "Env", "Labels", "Dir", "Hostname", "TTY", "StopGracePeriod", "Healthcheck", "Init", "ReadOnly"}
READ_ONLY_CALLS = {("GET", "/_ping"), ("HEAD", "/_ping"), ("GET", "/version")}
CONTAINER_ACTIONS = {("GET", "json"), ("GET", "logs"), ("POST", "start"), ("POST", "stop"), ("POST", "wait"), ("POST", "kill"), ("DELETE", "")}


def tmp_options(size: int) -> str:
    """A member's bounded /tmp (jupyterhub_config.py)."""
    return f"rw,nosuid,nodev,size={size},mode=1777"


class Refused(Exception):
    """A call the hub may not make: the rule it broke, said so a sysadmin can read it."""


def memory_bytes(limit: str) -> int:
    """'1.5G' in bytes, as DockerSpawner and labhub count them."""
    return int(float(limit[:-1]) * 1024 ** ("KMGT".index(limit[-1].upper()) + 1))


@dataclass(frozen=True)
class Member:
    name: str
    user: str  # "uid:gid" of her host account
    binds: dict[str, tuple[str, bool]]  # host path -> (path in the server, read-only)
    group_gids: frozenset[str]  # her groups' host groups
    masked: frozenset[str]  # other groups' folders, covered
    images: frozenset[str]
    gpus: bool  # her groups give her GPUs
    memory: int
    cpu_limit: float
    tmp_size: int  # her /tmp, a tmpfs, in bytes


class Lab:
    """labhub.json and the host's accounts, as the hub sees them."""

    def __init__(self, settings: dict):
        self.network = settings["network"]
        self.pids_limit = settings["pids_limit"]
        self.gpu_images = {ref for ref, gpus in settings["image_gpus"].items() if gpus is not None}
        self.members = {}
        shares = {share["path"]: (share["path"], share["read_only"]) for share in settings["shares"]}
        accounts = {account.pw_name: account for account in pwd.getpwall()}  # one read for 500 members
        groups = {group.gr_name: group.gr_gid for group in grp.getgrall()}
        for user in settings["users"]:
            account = accounts[user["account"]]
            self.members[user["name"]] = Member(
                name=user["name"],
                user=f"{account.pw_uid}:{account.pw_gid}",
                binds={account.pw_dir: (account.pw_dir, False), **shares, **{path: (path, False) for path in user["folders"]}},
                group_gids=frozenset(str(groups[group]) for group in user["folders"].values()),
                masked=frozenset(user["masked"]),
                images=frozenset([*settings["images"].values(), *user["images"].values()]),
                gpus=user["gpus"] is not None,
                memory=memory_bytes(user["mem_limit"]),
                cpu_limit=user["cpu_limit"],
                tmp_size=user["tmp_size"],
            )
        self.images = frozenset(image for member in self.members.values() for image in member.images)

    @classmethod
    def load(cls, path: str) -> Lab:
        with open(path) as file:
            return cls(json.load(file))

    def owner(self, name: str) -> Member:
        """The member whose server a container or service of this name is."""
        name = name.lstrip("/")
        for member in self.members.values():
            if name == PREFIX + member.name or name.startswith(f"{PREFIX}{member.name}--"):
                return member
        raise Refused(f"{name!r} is not a member's server (jupyter-<member> of labhub.json)")


def split(target: str) -> tuple[str, dict]:
    """The path without its API version, and the query."""
    path, _, query = target.partition("?")
    path = re.sub(r"^/v[0-9.]+(?=/)", "", unquote(path))
    return path.rstrip("/") or "/", parse_qs(query)


async def decide(lab: Lab, method: str, target: str, body: bytes, inspect) -> str:
    """The rule that allows this call. `inspect(kind, ident)` returns what the engine knows of
    a container or service ({"Name": ...}) or None when there is none."""
    path, query = split(target)
    if (method, path) in READ_ONLY_CALLS:
        return "engine version"
    parts = path.strip("/").split("/")
    if (method, path) == ("POST", "/containers/create"):
        member = lab.owner(first(query, "name"))
        check_container(lab, member, load(body))
        return f"create {member.name}'s server"
    if parts[0] == "containers" and len(parts) in (2, 3):
        action = parts[2] if len(parts) == 3 else ""
        if (method, action) not in CONTAINER_ACTIONS:
            raise Refused(f"{method} /containers/<id>/{action} is not a call the hub makes (only inspect, logs, start, stop, wait, kill, remove)")
        expect(not body, f"{method} /containers/<id>/{action} carries no body (an old engine took a HostConfig on start)")
        member = await owner(lab, "containers", parts[1], inspect)
        return f"{action or 'remove'} {member.name}'s server"
    if parts[0] == "images" and method == "GET" and parts[-1] == "json":
        image = "/".join(parts[1:-1])
        if image not in lab.images:
            raise Refused(f"image {image!r} is not one the hub's data allows")
        return "inspect an allowed image"
    if (method, path) == ("POST", "/images/create"):
        image = first(query, "fromImage") + (f":{query['tag'][0]}" if "tag" in query else "")
        if image not in lab.images:
            raise Refused(f"pulling {image!r}: not an image the hub's data allows (the lab's registry)")
        return "pull an allowed image"
    if (method, path) == ("POST", "/services/create"):
        spec = load(body)
        member = lab.owner(spec.get("Name") or "")
        check_service(lab, member, spec)
        return f"create {member.name}'s service"
    if parts[0] == "services" and len(parts) == 2 and method in ("GET", "DELETE"):
        member = await owner(lab, "services", parts[1], inspect)
        return f"{'inspect' if method == 'GET' else 'remove'} {member.name}'s service"
    if (method, path) == ("GET", "/tasks"):
        filters = json.loads(first(query, "filters"))
        services = filters.get("service")
        if not services or not all(lab.owner(name) for name in services):
            raise Refused("listing tasks: only those of a member's service")
        return "list a member's service's tasks"
    raise Refused(f"{method} {path} is not a call the hub makes")


async def owner(lab: Lab, kind: str, ident: str, inspect) -> Member:
    """Whose server a container or service is, by its name, or by its ID as the engine knows
    it (a name is never taken for an ID: names here are not hexadecimal)."""
    try:
        return lab.owner(ident)
    except Refused:
        found = await inspect(kind, ident)
        if found is None:
            raise
        return lab.owner(found["Name"] if kind == "containers" else found["Spec"]["Name"])


def first(query: dict, key: str) -> str:
    if key not in query:
        raise Refused(f"the call has no {key}")
    return query[key][0]


class Fields(dict):
    """A JSON object as the engine reads it: Go's encoding/json matches a struct's field names
    without regard to case, so "hostconfig" is HostConfig there, and so here."""

    folded: dict[str, str]

    def get(self, key, default=None):
        return dict.get(self, self.folded.get(key.lower(), key), default)


def fields(pairs: list) -> Fields:
    """Refuses what the two readings could take differently: a key twice (in any case), and
    keys beyond ASCII (Go also folds a few other letters: 'ſ' is 's' to it)."""
    found = Fields(pairs)
    found.folded = {}
    for key, _ in pairs:
        if not key.isascii():
            raise Refused(f"key {key!r} in the body is not ASCII")
        if key.lower() in found.folded:
            raise Refused(f"key {key!r} appears twice in one object of the body (the engine ignores case)")
        found.folded[key.lower()] = key
    return found


def load(body: bytes) -> dict:
    try:
        spec = json.loads(body, object_pairs_hook=fields)
    except ValueError:
        raise Refused("the body is not JSON") from None
    if not isinstance(spec, dict):
        raise Refused("the body is not a JSON object")
    return spec


def expect(ok: bool, reason: str) -> None:
    if not ok:
        raise Refused(reason)


def check_container(lab: Lab, member: Member, spec: dict) -> None:
    """A container create: what run_as_host_account (jupyterhub_config.py) makes, nothing else."""
    image = spec.get("Image")
    expect(image in member.images, f"image {image!r} is not one the hub's data allows {member.name}")
    check_user(member, spec.get("User"))
    host = spec.get("HostConfig") or {}
    binds = sorted(host.get("Binds") or [])
    wanted = sorted(f"{source}:{target}:{'ro' if read_only else 'rw'}" for source, (target, read_only) in member.binds.items())
    expect(binds == wanted, f"binds {binds} are not exactly {member.name}'s home, shares and groups' folders {wanted}")
    expect(not host.get("Mounts") and not host.get("VolumesFrom"), "no other mounts or volumes")
    expect(set(spec.get("Volumes") or {}) <= {target for target, _ in member.binds.values()}, "no anonymous volumes")
    tmpfs = host.get("Tmpfs") or {}
    wanted_tmpfs = {"/tmp": tmp_options(member.tmp_size), **{path: MASK_OPTIONS for path in member.masked}}
    expect(tmpfs == wanted_tmpfs, f"tmpfs {tmpfs} is not her bounded /tmp and the covers of other groups' folders")
    expect(host.get("Privileged") in (None, False), "a member's server is never privileged")
    expect(not host.get("CapAdd") and "ALL" in (host.get("CapDrop") or []), "a member's server drops all capabilities and adds none")
    expect(not host.get("Devices") and not host.get("DeviceCgroupRules"), "a member's server gets no devices")
    gpu_ok = member.gpus or image in lab.gpu_images
    expect(not host.get("DeviceRequests") or gpu_ok, f"GPUs: none of {member.name}'s groups nor her image gives her any")
    expect(host.get("NetworkMode") == lab.network, f"network {host.get('NetworkMode')!r}: a member's server is on {lab.network!r} only")
    endpoints = set(((spec.get("NetworkingConfig") or {}).get("EndpointsConfig") or {}))
    expect(endpoints <= {lab.network}, f"networks {sorted(endpoints)}: {lab.network!r} only")
    for namespace in ("PidMode", "IpcMode", "UTSMode", "UsernsMode", "CgroupnsMode", "Cgroup"):
        expect(host.get(namespace) in (None, "", "private"), f"{namespace} {host.get(namespace)!r}: no shared namespace")
    expect(host.get("SecurityOpt") == NO_NEW_PRIVILEGES, f"SecurityOpt must be exactly {NO_NEW_PRIVILEGES}")
    expect(host.get("Memory") == member.memory, f"memory limit {host.get('Memory')}: {member.name}'s is {member.memory}")
    period = host.get("CpuPeriod") or 100_000
    expect(host.get("CpuQuota") == int(member.cpu_limit * period), f"CPU quota {host.get('CpuQuota')}: {member.name}'s limit is {member.cpu_limit} CPUs")
    expect(host.get("PidsLimit") == lab.pids_limit, f"PIDs limit {host.get('PidsLimit')}: the lab's is {lab.pids_limit}")
    expect(set(host.get("GroupAdd") or []) == member.group_gids, f"extra groups {host.get('GroupAdd')}: {member.name}'s are {sorted(member.group_gids)}")
    expect(not host.get("PortBindings") and not host.get("PublishAllPorts"), "a member's server publishes no port")
    checked = {"Binds", "Mounts", "VolumesFrom", "Tmpfs", "Privileged", "CapAdd", "CapDrop", "Devices", "DeviceCgroupRules", "DeviceRequests",
               "NetworkMode", "PidMode", "IpcMode", "UTSMode", "UsernsMode", "CgroupnsMode", "Cgroup", "SecurityOpt", "Memory",
               "CpuQuota", "PidsLimit", "GroupAdd", "PortBindings", "PublishAllPorts"}
    extra = set_beyond(host, checked | HARMLESS_HOST_CONFIG)
    expect(not extra, f"HostConfig {extra}: not among what a member's server may set")


def set_beyond(spec: dict, allowed: set[str]) -> list[str]:
    """The keys of a spec that carry a value and are not allowed (in any case, as the engine reads them)."""
    folded = {key.lower() for key in allowed}
    return sorted(key for key, value in spec.items() if value and key.lower() not in folded)


def check_user(member: Member, user) -> None:
    expect(user == member.user, f"user {user!r}: {member.name}'s server runs as {member.user}")
    expect(not member.user.startswith("0:"), "never as root")


def check_service(lab: Lab, member: Member, spec: dict) -> None:
    """A swarm service: what LabSwarmSpawner (jupyterhub_config.py) makes, nothing else."""
    task = spec.get("TaskTemplate") or {}
    container = task.get("ContainerSpec") or {}
    image = container.get("Image")
    expect(image in member.images, f"image {image!r} is not one the hub's data allows {member.name}")
    check_user(member, container.get("User"))
    binds, covers, wanted = [], [], {source: (target, read_only) for source, (target, read_only) in member.binds.items()}
    tmp = {"SizeBytes": member.tmp_size, "Mode": 0o1777}
    for mount in container.get("Mounts") or []:
        if mount.get("Type") == "tmpfs" and mount.get("Target") == "/tmp":
            expect(mount.get("TmpfsOptions") == tmp and not mount.get("ReadOnly"), f"/tmp {mount}: her bounded /tmp is {tmp}")
            covers.append("/tmp")
        elif mount.get("Type") == "tmpfs":
            covers.append(mount.get("Target"))
            expect(bool(mount.get("ReadOnly")), "a cover is read-only")
        else:
            expect(mount.get("Type") == "bind", f"mount type {mount.get('Type')!r}: binds and covers only")
            binds.append((mount.get("Source"), (mount.get("Target"), bool(mount.get("ReadOnly")))))
    expect(dict(binds) == wanted and len(binds) == len(wanted), f"mounts {binds} are not exactly {member.name}'s home, shares and groups' folders")
    expect(sorted(covers) == sorted({"/tmp", *member.masked}), f"tmpfs {covers} is not her bounded /tmp and the covers of other groups' folders")
    expect(set(container.get("Groups") or []) == member.group_gids, f"extra groups {container.get('Groups')}: {member.name}'s are {sorted(member.group_gids)}")
    expect(not container.get("CapabilityAdd") and "ALL" in (container.get("CapabilityDrop") or []), "a member's server drops all capabilities and adds none")
    checked = {"User", "Mounts", "Groups", "CapabilityAdd", "CapabilityDrop"}
    extra = set_beyond(container, checked | HARMLESS_CONTAINER_SPEC)
    expect(not extra, f"ContainerSpec {extra}: not among what a member's server may set")
    limits = (task.get("Resources") or {}).get("Limits") or {}
    expect(limits.get("MemoryBytes") == member.memory, f"memory limit {limits.get('MemoryBytes')}: {member.name}'s is {member.memory}")
    expect(limits.get("NanoCPUs") == int(member.cpu_limit * 1e9), f"CPU limit {limits.get('NanoCPUs')}: {member.name}'s is {member.cpu_limit}")
    expect(limits.get("Pids") == lab.pids_limit, f"PIDs limit {limits.get('Pids')}: the lab's is {lab.pids_limit}")
    networks = [network.get("Target") for network in task.get("Networks") or []]
    expect(networks == [lab.network], f"networks {networks}: {lab.network!r} only")
    expect(not (spec.get("EndpointSpec") or {}).get("Ports"), "a member's server publishes no port")
    expect(not task.get("Runtime") and not task.get("PluginSpec"), "a plain container only")
