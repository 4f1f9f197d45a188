"""Past one server (issue 12): three test hosts, one manager running the hub and two workers,
made one Docker Swarm by one `pyinfra INVENTORY deploy.py`; members' servers as swarm
services spread over them, reaching the hub over the overlay network and writing to the
shared homes; a stopped worker passed over; drift named per node; a worker taken out of
the lab's data drained and out. The cases run in order on one lab."""

from __future__ import annotations

import json
import os
import time

import pytest

from tests.harness import cli
from tests.harness.hubclient import HubUser
from tests.harness.swarmlab import LABELS, MEMBERS, WORKERS, converged_swarm

pytestmark = [pytest.mark.hub, pytest.mark.swarm]

PASSWORDS = {"alice": "alice-swarm-login-1", "bob": "bob-swarm-login-2", "carol": "carol-swarm-login-3", "dave": "dave-swarm-login-4"}
UIDS = {member["name"]: member["uid"] for member in MEMBERS}


@pytest.fixture(scope="module")
def swarm(tmp_path_factory, testhost_image, ssh_key):
    with converged_swarm(tmp_path_factory.mktemp("swarm"), testhost_image, ssh_key) as lab:
        lab.users = {}
        for name, password in PASSWORDS.items():
            lab.users[name] = HubUser(lab.url)
            assert lab.users[name].login(name, password), f"{name}'s first login"
            lab.users[name].create_token(name)
        yield lab


def stop_servers(swarm) -> None:
    for name, user in swarm.users.items():
        user.api("DELETE", f"/hub/api/users/{name}/server")
    deadline = time.monotonic() + 120
    while swarm.hub.exec("docker service ls -q --filter name=jupyter-").stdout.strip():
        assert time.monotonic() < deadline, "servers still running 120 s after they were stopped"
        time.sleep(2)


def drift(swarm, tmp_path) -> tuple[int, str, dict]:
    """The nightly drift check over the three nodes: exit code, what it printed, each host's status."""
    run = cli.drift_check(swarm.inventory, "--report-dir", str(tmp_path))
    report = json.loads((tmp_path / "drift.json").read_text())["hosts"]
    return run.returncode, run.output, {name: host["status"] for name, host in report.items()}


def test_one_run_forms_the_swarm_with_labels_and_a_second_changes_nothing(swarm):
    nodes = swarm.nodes()
    assert {name: (node["state"], node["availability"], node["labels"]) for name, node in nodes.items()} == {
        name: ("ready", "active", labels) for name, labels in LABELS.items()
    }
    network = swarm.hub.exec("docker network inspect --format '{{.Driver}} {{.Attachable}} {{.Scope}}' labhub-swarm").stdout.split()
    assert network == ["overlay", "true", "swarm"]
    print(f"first converge of the three-node lab: {swarm.first_run_seconds:.0f} s")
    again = cli.changed_operations(cli.converge(swarm.inventory))
    assert again == {}, f"a second run changed: {again}"
    assert cli.dry_plan(swarm.inventory) == {}
    # One node alone (--limit): the others are still the lab's, validated with the same secrets, and not drained.
    alone = cli.changed_operations(cli.converge(swarm.inventory, "--limit", "swarmhub"))
    assert alone == {} and len(swarm.nodes()) == 3, alone


def test_the_join_token_is_never_printed_or_left_on_a_node(swarm):
    token = swarm.hub.exec("docker swarm join-token -q worker").stdout.strip()
    manager_token = swarm.hub.exec("docker swarm join-token -q manager").stdout.strip()
    assert token.startswith("SWMTKN-")
    # A node joining anew, at the highest verbosity: the run's whole output holds no token.
    worker = swarm.hosts[WORKERS[0]]
    worker.exec("docker swarm leave >/dev/null")
    run = cli.pyinfra(swarm.inventory, "-y", "-vvv", "--debug", "deploy.py")
    assert run.returncode == 0, run.explain()
    assert "Swarm membership" in run.output
    for secret in (token, manager_token, token.split("-")[-1]):
        assert secret not in run.output
    for host in swarm.hosts.values():
        leftover = host.exec(f"grep -rl {token.split('-')[-1]} /run /tmp /var/tmp /root /etc 2>/dev/null; true").stdout.strip()
        assert leftover == "", f"{host.name}: the join token is in {leftover}"
    assert swarm.nodes()[WORKERS[0]]["state"] == "ready"
    # The node that left is gone from the swarm's list; the one that joined has the labels.
    assert len([line for line in swarm.hub.exec("docker node ls -q").stdout.split()]) == 3


def test_servers_spread_over_the_nodes_reach_the_hub_and_write_homes_as_their_uid(swarm):
    for name in ("alice", "bob", "carol"):
        swarm.users[name].start_server(name)
    placed = swarm.placement()
    assert set(placed) == {"jupyter-alice", "jupyter-bob", "jupyter-carol"}, placed
    assert len(set(placed.values())) >= 2, f"expected the servers on different nodes, found {placed}"
    for name in ("alice", "bob", "carol"):
        # The contents API goes hub -> server; the server checks the token with the hub
        # (server -> hub over the overlay network) before it answers.
        status, answer = swarm.users[name].write(name, f"home/jupyter-{name}/from-the-swarm.txt", f"written on {placed['jupyter-' + name]}")
        assert status in (200, 201), f"{name}: {status} {answer}"
        written = swarm.homes / f"jupyter-{name}" / "from-the-swarm.txt"
        assert written.read_text() == f"written on {placed['jupyter-' + name]}"
        assert os.stat(written).st_uid == UIDS[name], f"{name}'s file: uid {os.stat(written).st_uid}"
    stop_servers(swarm)


def test_with_a_workers_docker_stopped_new_servers_go_to_the_other_nodes_and_drift_names_it(swarm, tmp_path):
    stopped = WORKERS[0]
    swarm.hosts[stopped].exec("systemctl stop docker.socket docker.service")
    try:
        deadline = time.monotonic() + 90
        while swarm.nodes()[stopped]["state"] != "down":
            assert time.monotonic() < deadline, "the manager did not see the worker go down within 90 s"
            time.sleep(3)
        for name in PASSWORDS:
            swarm.users[name].start_server(name)
        placed = swarm.placement()
        assert len(placed) == 4 and stopped not in placed.values(), placed
        code, output, status = drift(swarm, tmp_path)
        assert code != 0 and status[stopped] == status["swarmhub"] == "drifted" and f"{stopped}: down" in output, output[-4000:]
        stop_servers(swarm)
    finally:
        swarm.hosts[stopped].exec("systemctl start docker.service")
    deadline = time.monotonic() + 90
    while swarm.nodes()[stopped]["state"] != "ready":
        assert time.monotonic() < deadline, "the worker did not come back within 90 s"
        time.sleep(3)


def test_a_changed_label_is_drift_and_the_next_run_puts_it_back(swarm, tmp_path):
    node_id = swarm.nodes()[WORKERS[1]]["id"]
    swarm.hub.exec(f"docker node update --label-add pool=c {node_id} >/dev/null")
    code, output, status = drift(swarm, tmp_path)
    assert status == {"swarmhub": "drifted", WORKERS[0]: "clean", WORKERS[1]: "clean"}, output[-4000:]
    assert f"{WORKERS[1]}: labels {{'pool': 'c'}}" in output, output[-4000:]
    changed = cli.changed_operations(cli.converge(swarm.inventory))
    assert changed == {"swarmhub": ["Swarm | Swarm nodes: the lab's, with their labels"]}, changed
    assert swarm.nodes()[WORKERS[1]]["labels"] == LABELS[WORKERS[1]]
    code, output, status = drift(swarm, tmp_path)
    assert (code, set(status.values())) == (0, {"clean"}), output[-6000:]


def test_a_group_asking_for_a_label_runs_its_servers_there(swarm):
    swarm.data = {name: {**data, "groups": [{"name": "imaging", "gid": 3100, "members": ["carol"], "folder": "/mnt/analysis/groups/imaging",
                                              "node_labels": {"pool": "b"}}]} for name, data in swarm.data.items()}
    for host in swarm.hosts.values():
        host.exec("mkdir -p /srv/fileserver/analysis/groups")
    cli.converge(swarm.write())
    swarm.users["carol"].start_server("carol")
    assert swarm.placement() == {"jupyter-carol": WORKERS[1]}
    stop_servers(swarm)


def test_a_worker_taken_out_of_the_lab_is_drained_and_leaves(swarm):
    leaving = WORKERS[1]
    swarm.users["carol"].start_server("carol")  # the imaging group's: on the leaving worker
    assert swarm.placement() == {"jupyter-carol": leaving}
    data = {k: v for k, v in swarm.data[leaving].items() if k not in ("swarm", "groups")}
    data["shares"] = [share for share in data["shares"] if not share.get("homes")]
    data["hub"] = {**data["hub"], "enabled": False}
    swarm.data[leaving] = data
    for name in swarm.data:
        if name != leaving:
            swarm.data[name] = {**swarm.data[name], "groups": []}
    changed = cli.changed_operations(cli.converge(swarm.write()))
    assert "Swarm departures | Nodes no longer in the lab drained and removed" in changed["swarmhub"]
    assert "Swarm departures | Out of any swarm (no swarm.role)" in changed[leaving]
    assert "Docker engine | daemon.json" in changed[leaving]  # back to one-server settings (live-restore), once out of the swarm
    assert leaving not in swarm.nodes()
    assert swarm.hosts[leaving].exec("docker info --format '{{.Swarm.LocalNodeState}}'").stdout.strip() == "inactive"
    assert swarm.hosts[leaving].exec("docker ps -q --filter name=jupyter-").stdout.strip() == ""
    again = cli.changed_operations(cli.converge(swarm.inventory))
    assert again == {}, again
    stop_servers(swarm)
