"""The Docker API proxy's rules without a host (files/docker-api-proxy/policy.py): a swarm
service as SwarmSpawner sends it, and what fails closed. The rules on a real hub, through the
real relay, are proven in test_docker_api.py."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import grp
import pwd
import sys
from pathlib import Path

import pytest

# The proxy's module is a file of the stack (it lands on the host as it is), not a package.
spec = importlib.util.spec_from_file_location("docker_api_policy", Path(__file__).parent.parent / "files" / "docker-api-proxy" / "policy.py")
policy = sys.modules["docker_api_policy"] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(policy)

SETTINGS = {
    "network": "labhub",
    "pids_limit": 1024,
    "image_gpus": {},
    "images": {"notebook": "localhost:5000/notebook:abc"},
    "shares": [{"path": "/mnt/data", "read_only": True}],
    "users": [
        {"name": "alice", "account": "jupyter-alice", "folders": {"/srv/groups/optics": "lab-optics"}, "masked": [],
         "images": {}, "gpus": None, "mem_limit": "2G", "cpu_limit": 1.5, "tmp_size": 1024**3},
        {"name": "bob", "account": "jupyter-bob", "folders": {}, "masked": ["/mnt/data/groups/optics"],
         "images": {}, "gpus": None, "mem_limit": "2G", "cpu_limit": 1.5, "tmp_size": 1024**3},
    ],
}


@pytest.fixture
def lab(monkeypatch):
    accounts = [pwd.struct_passwd((f"jupyter-{n}", "x", uid, 100, "", f"/home/jupyter-{n}", "/bin/bash")) for n, uid in (("alice", 1001), ("bob", 1002))]
    monkeypatch.setattr(policy.pwd, "getpwall", lambda: accounts)
    monkeypatch.setattr(policy.grp, "getgrall", lambda: [grp.struct_group(("lab-optics", "x", 3001, []))])
    return policy.Lab(SETTINGS)


def service(**container_change) -> dict:
    """A member's service, as LabSwarmSpawner makes it through docker-py."""
    container = {
        "Image": "localhost:5000/notebook:abc", "Args": ["jupyterhub-singleuser"], "Env": ["JUPYTERHUB_API_TOKEN=secret"],
        "User": "1001:100", "Groups": ["3001"], "CapabilityDrop": ["ALL"],
        "Mounts": [{"Target": "/home/jupyter-alice", "Source": "/home/jupyter-alice", "Type": "bind", "ReadOnly": False},
                   {"Target": "/mnt/data", "Source": "/mnt/data", "Type": "bind", "ReadOnly": True},
                   {"Target": "/srv/groups/optics", "Source": "/srv/groups/optics", "Type": "bind", "ReadOnly": False},
                   {"Target": "/tmp", "Type": "tmpfs", "ReadOnly": False, "TmpfsOptions": {"SizeBytes": 1024**3, "Mode": 0o1777}}],
        **container_change,
    }
    return {"Name": "jupyter-alice", "TaskTemplate": {
        "ContainerSpec": container, "Networks": [{"Target": "labhub"}], "ForceUpdate": 0,
        "Resources": {"Limits": {"MemoryBytes": 2 * 1024**3, "NanoCPUs": 1_500_000_000, "Pids": 1024}, "Reservations": {"MemoryBytes": 1024**3}},
        "Placement": {"Constraints": ["node.labels.gpu==yes"]}}, "EndpointSpec": {"Mode": "dnsrr"}}


def decide(lab, method, target, body=None, known=None):
    async def inspect(kind, ident):
        return (known or {}).get(ident)

    return asyncio.run(policy.decide(lab, method, target, json.dumps(body).encode() if body is not None else b"", inspect))


def test_a_members_service_as_swarmspawner_sends_it_is_allowed(lab):
    assert decide(lab, "POST", "/v1.45/services/create", service()) == "create alice's service"
    assert decide(lab, "GET", "/v1.45/tasks?filters=" + json.dumps({"service": ["jupyter-alice"], "desired-state": ["running"]}))
    assert decide(lab, "DELETE", "/v1.45/services/x1y2", known={"x1y2": {"Spec": {"Name": "jupyter-alice"}}}) == "remove alice's service"


@pytest.mark.parametrize("change, rule", [
    ({"User": "0:0"}, "runs as 1001:100"),
    ({"Image": "docker.io/library/debian:trixie"}, "not one the hub's data allows"),
    ({"CapabilityAdd": ["SYS_ADMIN"]}, "adds none"),
    ({"Mounts": [{"Target": "/host", "Source": "/", "Type": "bind", "ReadOnly": False}]}, "not exactly alice's home"),
    ({"Mounts": [{"Target": "/x", "Source": "loot", "Type": "volume"}]}, "binds and covers only"),
    ({"Privileges": {"SELinuxContext": {"Disable": True}}}, "ContainerSpec ['Privileges']"),
    ({"Sysctls": {"net.ipv4.ip_forward": "1"}}, "ContainerSpec ['Sysctls']"),
])
def test_a_service_out_of_the_rules_is_refused_with_its_rule(lab, change, rule):
    with pytest.raises(policy.Refused, match=rule.replace("[", r"\[").replace("]", r"\]")):
        decide(lab, "POST", "/v1.45/services/create", service(**change))


def test_a_service_on_another_network_or_publishing_a_port_is_refused(lab):
    spec = service()
    spec["TaskTemplate"]["Networks"] = [{"Target": "ingress"}]
    with pytest.raises(policy.Refused, match="networks"):
        decide(lab, "POST", "/v1.45/services/create", spec)
    spec = service()
    spec["EndpointSpec"] = {"Ports": [{"TargetPort": 8888, "PublishedPort": 80}]}
    with pytest.raises(policy.Refused, match="publishes no port"):
        decide(lab, "POST", "/v1.45/services/create", spec)


def test_what_cannot_be_read_or_named_is_refused(lab):
    with pytest.raises(policy.Refused, match="not JSON"):
        asyncio.run(policy.decide(lab, "POST", "/containers/create?name=jupyter-alice", b"{", None))
    with pytest.raises(policy.Refused, match="no name"):
        decide(lab, "POST", "/containers/create", {})
    with pytest.raises(policy.Refused, match="not a member's server"):
        decide(lab, "POST", "/containers/abc123/start")  # an ID the engine does not know
    with pytest.raises(policy.Refused, match="only those of a member's service"):
        decide(lab, "GET", "/tasks?filters=" + json.dumps({}))
    with pytest.raises(policy.Refused, match="not a member's server"):
        decide(lab, "GET", "/tasks?filters=" + json.dumps({"service": ["jupyterhub_hub"]}))
    with pytest.raises(policy.Refused, match="not a member's server"):
        decide(lab, "GET", "/containers/jupyter-mallory/json")


def test_another_groups_folder_is_covered_read_only_or_refused(lab):
    bob = service(User="1002:100", Groups=[], Mounts=[
        {"Target": "/home/jupyter-bob", "Source": "/home/jupyter-bob", "Type": "bind", "ReadOnly": False},
        {"Target": "/mnt/data", "Source": "/mnt/data", "Type": "bind", "ReadOnly": True},
        {"Target": "/tmp", "Type": "tmpfs", "ReadOnly": False, "TmpfsOptions": {"SizeBytes": 1024**3, "Mode": 0o1777}},
        {"Target": "/mnt/data/groups/optics", "Type": "tmpfs", "ReadOnly": True, "TmpfsOptions": {"SizeBytes": 4096, "Mode": 448}}])
    bob["Name"] = "jupyter-bob"
    assert decide(lab, "POST", "/services/create", bob) == "create bob's service"
    bob["TaskTemplate"]["ContainerSpec"]["Mounts"] = bob["TaskTemplate"]["ContainerSpec"]["Mounts"][:3]
    with pytest.raises(policy.Refused, match="covers"):
        decide(lab, "POST", "/services/create", bob)


def container(**host_change) -> dict:
    """alice's server, as DockerSpawner makes it (through docker-py)."""
    host = {"Binds": ["/home/jupyter-alice:/home/jupyter-alice:rw", "/mnt/data:/mnt/data:ro", "/srv/groups/optics:/srv/groups/optics:rw"],
            "NetworkMode": "labhub", "Memory": 2 * 1024**3, "CpuPeriod": 100000, "CpuQuota": 150000, "PidsLimit": 1024,
            "CapDrop": ["ALL"], "SecurityOpt": ["no-new-privileges:true"], "GroupAdd": ["3001"],
            "Tmpfs": {"/tmp": f"rw,nosuid,nodev,size={1024**3},mode=1777"}, **host_change}
    return {"Image": "localhost:5000/notebook:abc", "User": "1001:100", "HostConfig": host}


@pytest.mark.parametrize("tmpfs", [
    {},  # /tmp on the writable layer: the host's disk
    {"/tmp": f"rw,nosuid,nodev,size={4 * 1024**3},mode=1777"},  # larger than hers
    {"/tmp": "rw,nosuid,nodev,mode=1777"},  # unbounded
    {"/tmp": f"rw,nosuid,nodev,size={1024**3},mode=1777", "/var/tmp": "rw"},  # another one
])
def test_a_server_without_her_bounded_tmp_is_refused(lab, tmpfs):
    with pytest.raises(policy.Refused, match="bounded /tmp"):
        decide(lab, "POST", "/containers/create?name=jupyter-alice", container(Tmpfs=tmpfs))


def test_a_service_without_her_bounded_tmp_is_refused(lab):
    mounts = service()["TaskTemplate"]["ContainerSpec"]["Mounts"]
    with pytest.raises(policy.Refused, match="bounded /tmp"):
        decide(lab, "POST", "/services/create", service(Mounts=mounts[:3]))
    larger = [*mounts[:3], {**mounts[3], "TmpfsOptions": {"SizeBytes": 4 * 1024**3, "Mode": 0o1777}}]
    with pytest.raises(policy.Refused, match="bounded /tmp"):
        decide(lab, "POST", "/services/create", service(Mounts=larger))


def test_what_the_engine_reads_regardless_of_case_is_checked_as_it_reads_it(lab):
    """Go's JSON decoder matches field names without regard to case: a second, lower-case
    HostConfig would be the engine's, and a lower-case 'privileged' is Privileged to it."""
    create = "/v1.45/containers/create?name=jupyter-alice"
    assert decide(lab, "POST", create, container()) == "create alice's server"
    with pytest.raises(policy.Refused, match="never privileged"):
        decide(lab, "POST", create, container(privileged=True))
    smuggled = json.dumps(container())[:-1] + ', "hostconfig": {"Privileged": true}}'
    with pytest.raises(policy.Refused, match="appears twice"):
        asyncio.run(policy.decide(lab, "POST", create, smuggled.encode(), None))
    with pytest.raises(policy.Refused, match="not ASCII"):
        decide(lab, "POST", create, {**container(), "HostConfiſ": {}})
    with pytest.raises(policy.Refused, match="carries no body"):
        asyncio.run(policy.decide(lab, "POST", "/v1.45/containers/jupyter-alice/start", b'{"Privileged": true}', None))
