"""A swarm lab in data, checked before any host is touched, and what it makes of the hub's
files and the engine's: no host needed. The swarm on real test hosts is in test_swarm.py."""

from __future__ import annotations

import json

import pytest

from labhub.config import LabHost
from labhub.inventory import ConfigError, validate_host_data, validate_inventory
from labhub.ops.swarm import SwarmState, node_changes, parse_node
from tasks.hub import plan

pytestmark = pytest.mark.quick

HOMES = {"name": "homes", "server": "files.example.org", "share": "labhomes", "mount_point": "/home", "homes": True}
NODE = {
    "users": [{"name": "alice", "uid": 2001}, {"name": "bob", "uid": 2002}],
    "admins": [{"name": "labadmin", "uid": 1900}],
    "shares": [HOMES],
}
ENV = {"LABHUB_SHARE_HOMES_USERNAME": "lab", "LABHUB_SHARE_HOMES_PASSWORD": "Homes-Pw-1"}


@pytest.fixture(autouse=True)
def share_credentials(monkeypatch):
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)


def node(role: str, address: str | None = "10.1.2.10", **extra) -> dict:
    return {**NODE, "swarm": {"role": role, "advertise_address": address}, **extra}


class FakeHost:
    def __init__(self, name: str, data: dict):
        self.name, self.data = name, type("Data", (), {"dict": lambda _self: data})()


def lab_problems(**hosts: dict) -> str:
    with pytest.raises(ConfigError) as error:
        validate_inventory([FakeHost(name, data) for name, data in hosts.items()], None)
    return str(error.value)


@pytest.mark.parametrize(
    "data, expected",
    [
        ({**node("hub"), "users": ["alice"]}, "users (alice): swarm.role is 'hub', and a swarm lab needs a fixed uid for every account"),
        ({**node("hub"), "admins": ["labadmin"]}, "admins (labadmin)"),
        ({**node("hub"), "shares": []}, "mark one share homes: true (mount_point '/home')"),
        ({**node("hub"), "shares": [{**HOMES, "mount_point": "/srv/homes"}]}, "a share with homes: true is mounted at /home"),
        ({**node("hub"), "groups": [{"name": "optics", "members": ["alice"], "gid": 3001}]}, "a group folder must be on a share every node mounts"),
        ({**node("hub"), "groups": [{"name": "optics", "members": ["alice"], "folder": "/home/x"}]}, "must not be under /home"),
        ({**node("hub"), "nvidia_gpus": True}, "GPUs in a swarm lab are not supported yet"),
        (node("hub", None), "swarm.advertise_address: the hub of a swarm lab needs the IP address"),
        (node("hub", "hub.example.org"), "must be an IP address"),
        ({**node("hub"), "swarm": {"role": "hub", "advertise_address": "10.0.0.1", "labels": {"labhub.node": "x"}}}, "not 'labhub.*'"),
        ({**node("hub"), "swarm": {"role": "hub", "advertise_address": "10.0.0.1", "labels": {"gpu": "a b"}}}, "a value is at most 63 letters"),
        ({**node("hub"), "swarm": {"role": "manager"}}, "swarm.role"),
        ({**node("hub"), "hub": {"enabled": False}}, "the swarm's hub runs JupyterHub"),
        ({**NODE}, "homes: true is for a swarm lab"),
        ({"shares": [{**HOMES, "homes": False}]}, "only the homes share of a swarm lab goes there (homes: true)"),
    ],
)
def test_a_swarm_node_with_bad_data_is_refused_with_a_hint(data, expected):
    with pytest.raises(ConfigError) as error:
        validate_host_data("node1", data)
    assert expected in str(error.value)


def test_a_lab_needs_exactly_one_hub_and_the_same_accounts_on_every_node():
    assert "exactly one host with swarm.role 'hub' (its manager, running JupyterHub); found none among w1, w2; with --limit, include the hub" in lab_problems(w1=node("worker"), w2=node("worker"))
    assert "found 2 (h1, h2)" in lab_problems(h1=node("hub"), h2=node("hub"), w1=node("worker"))
    other = lab_problems(h=node("hub"), w=node("worker", users=[{"name": "alice", "uid": 2001}, {"name": "bob", "uid": 2999}]))
    assert "host 'w': users differ from the hub's (h)" in other and "Nothing was changed: no host was contacted." in other
    assert validate_inventory([FakeHost("h", node("hub")), FakeHost("w", node("worker", None)), FakeHost("solo", {})], None)


def test_a_swarm_hub_runs_swarmspawner_on_the_overlay_network_and_mounts_only_each_home():
    config = LabHost.model_validate({**node("hub"), "groups": [{"name": "imaging", "gid": 3100, "members": ["bob"], "node_labels": {"pool": "b"},
                                     "folder": "/mnt/analysis/groups/imaging"}],
                                     "shares": [HOMES, {"name": "analysis", "server": "f", "share": "a", "mount_point": "/mnt/analysis"}]})
    stack = plan(config)
    files = {f.path.rsplit("/", 1)[-1]: f.data.decode() for f in stack.files if f.path.count("/") == 3}
    settings = json.loads(files["labhub.json"])
    assert settings["network"] == "labhub-swarm" and settings["swarm"] == {"cpu_reservation": 0.25, "mem_reservation": "512M"}
    assert settings["shares"] == [{"path": "/mnt/analysis", "read_only": False}]  # the homes share is not mounted whole
    members = {member["name"]: member for member in settings["users"]}
    assert members["bob"]["node_labels"] == {"pool": "b"} and members["alice"]["node_labels"] == {}
    assert members["alice"]["masked"] == ["/mnt/analysis/groups/imaging"]
    assert "name: labhub-swarm\n    external: true" in files["compose.yaml"]
    assert config.daemon_config("hub1")["labels"] == ["labhub.node=hub1"] and config.daemon_config("hub1")["live-restore"] is False
    one_server = LabHost.model_validate({})
    assert "labels" not in one_server.daemon_config("solo") and one_server.daemon_config("solo")["live-restore"] is True


def api_node(node_id: str, name: str | None, labels: dict | None, availability: str, state: str, created: str) -> dict:
    """A node as the Engine API (and `docker node inspect --format '{{json .}}'`) describes it, abridged."""
    return {"ID": node_id, "CreatedAt": created, "Spec": {"Labels": labels, "Role": "worker", "Availability": availability},
            "Description": {"Hostname": name or "other", "Engine": {"EngineVersion": "26.1.5", "Labels": {"labhub.node": name} if name else None}},
            "Status": {"State": state, "Addr": "10.0.0.9"}}


def test_the_swarm_state_and_node_lines_parse_and_differences_are_named():
    info = {"ID": "x", "Swarm": {"LocalNodeState": "active", "ControlAvailable": True, "RemoteManagers": [{"NodeID": "n1", "Addr": "10.0.0.1:2377"}],
                                 "Cluster": {"TLSInfo": {"TrustRoot": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"}}}}
    listed = [api_node("n1", "hub1", {"pool": "a"}, "active", "ready", "2026-12-01T10:00:00Z"), api_node("n2", "w1", {}, "drain", "down", "2026-12-01T10:00:01Z"),
              api_node("n3", None, None, "active", "ready", "2026-12-01T10:00:02Z")]
    network = {"Name": "labhub-swarm", "Driver": "overlay", "Attachable": True}
    from_api = ["%info", json.dumps(info), "%nodes", json.dumps(listed), "", "%network", json.dumps(network), ""]  # curl: the nodes as one list
    from_cli = ["%info", json.dumps(info), "%nodes", *map(json.dumps, listed), "%network", json.dumps(network)]  # the docker CLI: a node a line
    state = SwarmState().process(from_api)
    assert SwarmState().process(from_cli) == state
    assert (state["state"], state["manager"], state["managers"], state["network"]) == ("active", True, ["10.0.0.1:2377"], {"driver": "overlay", "attachable": True})
    assert [n["name"] for n in state["nodes"]] == ["hub1", "w1", None]
    assert node_changes(state["nodes"], {"hub1": {"pool": "a"}, "w1": {}}) == ["w1: down (its engine does not answer the swarm)", "w1: labels {}, drain"]
    rejoined = [*state["nodes"], parse_node(json.dumps(api_node("n4", "w1", {}, "active", "ready", "2026-12-01T11:00:00Z")))]
    assert node_changes(rejoined, {"hub1": {"pool": "a"}, "w1": {}}) == ["w1: in the swarm 2 times (it left and joined again)"]
    assert node_changes(state["nodes"], {"hub1": {"pool": "b"}, "w2": {}}) == ["w2: not in the swarm", "hub1: labels {'pool': 'a'}, active", "w1: in the swarm, no longer in the lab"]
    worker = SwarmState().process(["%info", json.dumps({"Swarm": {"LocalNodeState": "active", "ControlAvailable": False, "RemoteManagers": None}}), "%nodes", "%network"])
    assert (worker["state"], worker["manager"], worker["nodes"], worker["network"]) == ("active", False, [], None)
    assert SwarmState().process([]) == SwarmState.default() == {"state": "inactive", "manager": False, "managers": [], "nodes": [], "network": None}
    assert parse_node(json.dumps(api_node("x", None, None, "active", "ready", "2026-12-01T10:00:00Z")))["name"] is None
