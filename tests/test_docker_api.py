"""The hub without the host's keys: it reaches the Docker Engine only through the stack's
allow-list proxy (files/docker-api-proxy/), which refuses every call spawning does not need.
On the shared hub host: each rule's forbidden call is refused with 403, from inside the hub's
container, beside the same call made lawful, which the engine carries out; refusals are
logged with the call and the rule; a server is culled through it; the host checks and the
drift check name a hub that holds the socket again, and a deploy takes it away."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.harness import cli
from tests.test_drift import drift_of
from tests.test_hub import converge_with

pytestmark = pytest.mark.hub

CALLS = Path(__file__).parent / "harness" / "docker_api_calls.py"
REFUSED = [
    "privileged", "bind of /", "another member's home", "image from elsewhere", "UID 0", "named like the hub", "a capability added",
    "a host device", "GPUs nobody gave her", "the host's network", "the host's PID namespace", "no-new-privileges dropped",
    "no memory limit", "no PIDs limit", "seccomp off", "a second HostConfig in lower case", "docker exec into her server", "archive into her server",
    "network connect to the host network", "inspect the hub's container", "stop the hub's container", "list every container",
    "volume create", "image pull from elsewhere", "engine info", "swarm join",
]
# What the hub does to a member's server; each rule's forbidden call above is this one changed.
ALLOWED = {"lawful create": 201, "lawful start": 204, "lawful inspect": 200, "lawful logs": 200, "lawful stop": 204,
           "lawful image pull": 200, "lawful image inspect": 200}
PROXY = "jupyterhub-docker-api-1"


@pytest.fixture(scope="module")
def calls(hub_lab) -> dict:
    """Every call of docker_api_calls.py, made from inside the hub's container as carol's."""
    began = hub_lab.host.exec("date -u +%Y-%m-%dT%H:%M:%S.%NZ").stdout.strip()
    answer = hub_lab.host.exec("docker exec -i jupyterhub-hub-1 python3 - carol", input=CALLS.read_text())
    return {"results": json.loads(answer.stdout), "log": proxy_log(hub_lab, began)}


def proxy_log(hub_lab, since: str) -> list[str]:
    return hub_lab.docker(f"logs --since {since} {PROXY} 2>&1").splitlines()


def test_only_the_proxy_holds_the_socket_read_only_without_capabilities(hub_lab):
    hub, proxy = (json.loads(hub_lab.docker(f"inspect {name}"))[0] for name in ("jupyterhub-hub-1", PROXY))
    assert not any("docker.sock" in m["Source"] for m in hub["Mounts"]), hub["Mounts"]
    assert any(m["Source"] == "/var/run/docker.sock" for m in proxy["Mounts"])
    for container in (hub, proxy):
        config = container["HostConfig"]
        assert (config["ReadonlyRootfs"], config["CapDrop"], config["Privileged"]) == (True, ["ALL"], False), container["Name"]
        assert config["Memory"] > 0 and config["PidsLimit"] > 0
    assert set(proxy["NetworkSettings"]["Networks"]) == {"jupyterhub_docker-api"}, "the proxy is on the hub's internal network only"
    members = hub_lab.docker("network inspect jupyterhub_docker-api --format '{{.Internal}} {{range .Containers}}{{.Name}} {{end}}'").split()
    assert members[0] == "true" and sorted(members[1:]) == ["jupyterhub-docker-api-1", "jupyterhub-hub-1"]
    # And the hub's own engine address is the proxy: no other way to the engine from there.
    direct = hub_lab.host.exec("docker exec jupyterhub-hub-1 test -e /var/run/docker.sock", check=False)
    assert direct.returncode != 0


@pytest.mark.parametrize("case", REFUSED)
def test_each_forbidden_call_is_refused(calls, case):
    assert calls["results"][case] == 403, calls["results"]


@pytest.mark.parametrize("case", sorted(ALLOWED))
def test_the_same_call_made_lawful_is_carried_out(calls, case):
    assert calls["results"][case] == ALLOWED[case], calls["results"]


def test_refusals_are_logged_with_the_call_and_the_rule_and_no_body(calls):
    refused = [line for line in calls["log"] if " refused " in line]
    assert len(refused) == len(REFUSED), "\n".join(calls["log"])
    assert any("refused POST /v1.45/containers/create: a member's server is never privileged" in line for line in refused)
    assert any("refused POST /v1.45/containers/create: user '0:0': carol's server runs as" in line for line in refused)
    assert any("refused POST /v1.45/containers/create: 'jupyterhub-hub-1' is not a member's server" in line for line in refused)
    assert any("/exec is not a call the hub makes" in line for line in refused)
    assert not any("sleep" in line for line in calls["log"]), "a request's body is never logged"


def test_a_server_is_started_stopped_and_culled_through_the_proxy(hub_lab):
    from tests.harness.hubclient import HubUser

    try:
        converge_with(hub_lab, {"idle_timeout": 30})  # the culler looks every 15 s (the proxy is recreated: labhub.json changed)
        began = hub_lab.host.exec("date -u +%Y-%m-%dT%H:%M:%S.%NZ").stdout.strip()
        admin = HubUser(hub_lab.url)
        assert admin.login("bob", "bob-first-login-8")  # an admin (as test_hub.py sets his password)
        admin.create_token("bob")
        admin.api("DELETE", "/hub/api/users/carol/server")  # from test_browser.py, if it ran
        deadline = time.monotonic() + 60
        while json.loads(admin.api("GET", "/hub/api/users/carol")[1]).get("servers", {}).get(""):
            assert time.monotonic() < deadline, "carol's server did not stop"
            time.sleep(1)
        status, answer = admin.api("POST", "/hub/api/users/carol/server")
        assert status in (201, 202), answer
        deadline = time.monotonic() + 120
        while hub_lab.docker("ps -q --filter name=^jupyter-carol$"):
            assert time.monotonic() < deadline, "carol's idle server was not culled within 120 s"
            time.sleep(2)
        log = proxy_log(hub_lab, began)
        for rule in ("create carol's server", "start carol's server", "stop carol's server", "remove carol's server"):
            assert any(rule in line for line in log), "\n".join(log)
        assert not any(" refused " in line for line in log), "\n".join(log)
    finally:
        converge_with(hub_lab, {})


def test_a_hub_given_the_socket_again_is_drift_and_a_deploy_takes_it_away(hub_lab, tmp_path):
    hub_lab.host.exec(
        "printf 'services:\\n  hub:\\n    volumes: [\"/var/run/docker.sock:/var/run/docker.sock\"]\\n' > /root/socket.yaml && "
        "cd /opt/jupyterhub && docker compose -f compose.yaml -f /root/socket.yaml up -d hub 2>/dev/null"
    )
    run, report = drift_of(hub_lab.inventory, hub_lab.host.name, tmp_path)
    assert run.returncode == 2, run.explain()
    named = {f["resource"]: f for f in report["drift"] if f["source"] == "check"}
    assert "Docker socket" in named, report["drift"]
    assert "jupyterhub-hub-1" in json.dumps(named["Docker socket"])
    cli.converge(hub_lab.inventory)
    assert not any("docker.sock" in m["Source"] for m in json.loads(hub_lab.docker("inspect jupyterhub-hub-1"))[0]["Mounts"])
    run, report = drift_of(hub_lab.inventory, hub_lab.host.name, tmp_path)
    assert (run.returncode, report["status"]) == (0, "clean"), run.explain()
