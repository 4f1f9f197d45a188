"""What happens on a converged host when the lab's data changes, or someone changed the host:
each case converges a scratch test host, changes one thing, re-runs the real deploy, and
checks the host. Cases run in order on the same host."""

from __future__ import annotations

import json

import pytest

from tests.harness import cli
from tests.harness.hosts import start_host, remove_host, write_inventory

pytestmark = pytest.mark.host

BASE = {"hub": {"enabled": False}, "docker": {"source": "distro"}, "admins": ["labadmin"], "users": ["alice", "bob"]}


class Scratch:
    def __init__(self, host, inventory):
        self.host, self.inventory = host, inventory

    def deploy(self, data: dict):
        write_inventory(self.inventory, [(self.host, data)])
        return cli.deploy(self.inventory)

    def converge(self, data: dict) -> dict[str, list[str]]:
        write_inventory(self.inventory, [(self.host, data)])
        return cli.changed_operations(cli.converge(self.inventory)).get(self.host.name, [])

    def sh(self, command: str) -> str:
        return self.host.ssh(command).stdout.strip()

    def dockerd_started(self) -> str:
        return self.sh("systemctl show docker -p ExecMainStartTimestampMonotonic --value")


@pytest.fixture(scope="module")
def scratch(tmp_path_factory, testhost_image, ssh_key):
    host = start_host("scratch", testhost_image, ssh_key)
    try:
        scratch = Scratch(host, tmp_path_factory.mktemp("scratch") / "scratch_hosts.py")
        scratch.converge(BASE)
        yield scratch
    finally:
        remove_host(host)


def test_a_removed_user_is_locked_keeps_the_home_and_comes_back_unlocked(scratch):
    scratch.sh("echo data > /home/jupyter-bob/results.txt && chown jupyter-bob /home/jupyter-bob/results.txt")
    changed = scratch.converge({**BASE, "users": ["alice"]})
    assert changed == ["Users | admins, jupyter-* accounts, docker group"]
    shell, shadow = scratch.sh("getent passwd jupyter-bob | cut -d: -f7"), scratch.sh("getent shadow jupyter-bob | cut -d: -f2,8")
    assert shell == "/usr/sbin/nologin"
    assert shadow.startswith("!") and shadow.endswith(":1"), "password locked and account expired"
    assert scratch.sh("cat /home/jupyter-bob/results.txt") == "data"
    assert scratch.host.ssh("su -s /bin/sh -c true jupyter-bob", check=False).returncode != 0, "a locked account cannot log in"

    assert scratch.converge(BASE) == ["Users | admins, jupyter-* accounts, docker group"]
    assert scratch.sh("getent passwd jupyter-bob | cut -d: -f7") == "/bin/bash"
    assert scratch.sh("getent shadow jupyter-bob | cut -d: -f8") == ""
    assert scratch.converge(BASE) == []


def test_hand_made_docker_membership_and_sudo_are_undone(scratch):
    scratch.sh("useradd mallory && gpasswd -a mallory docker && gpasswd -a jupyter-alice docker && gpasswd -a jupyter-alice sudo")
    scratch.converge(BASE)
    assert scratch.sh("getent group docker | cut -d: -f4") == "labadmin"
    assert "jupyter-alice" not in scratch.sh("getent group sudo")


def test_daemon_json_change_restarts_dockerd_once(scratch):
    before = scratch.dockerd_started()
    data = {**BASE, "docker": {"source": "distro", "daemon_json": {"log-driver": "local"}}}
    changed = scratch.converge(data)
    assert changed == ["Docker engine | daemon.json", "Docker engine | dockerd enabled and running"]
    restarted = scratch.dockerd_started()
    assert restarted != before
    assert scratch.sh("docker info --format '{{.LoggingDriver}}'") == "local"
    assert scratch.converge(data) == []
    assert scratch.dockerd_started() == restarted, "no restart when daemon.json did not change"


def test_a_daemon_json_dockerd_refuses_is_not_installed(scratch):
    before = scratch.sh("cat /etc/docker/daemon.json")
    run, results = scratch.deploy({**BASE, "docker": {"source": "distro", "daemon_json": {"max-concurrent-downloads": "six"}}})
    assert run.returncode != 0
    assert "[scratch]" in run.output and "daemon.json" in run.output
    assert "/etc/docker/daemon.json was not changed: the new version fails 'dockerd --validate" in run.output, run.explain()
    assert scratch.sh("cat /etc/docker/daemon.json") == before
    assert scratch.sh("systemctl is-active docker") == "active"
    assert "labhub-new" not in scratch.sh("ls /etc/docker")
    scratch.converge(BASE)
    assert json.loads(scratch.sh("cat /etc/docker/daemon.json"))["log-driver"] == "json-file"


def test_an_unsupported_os_stops_the_run_before_any_change(scratch):
    scratch.sh("cp /usr/lib/os-release /root/os-release.orig && sed -i 's/^VERSION_ID=.*/VERSION_ID=\"11\"/' /usr/lib/os-release")
    try:
        run, _ = scratch.deploy({**BASE, "users": ["alice", "bob", "erin"]})
        assert run.returncode != 0
        assert "host 'scratch': debian 11 is not supported" in run.output, run.explain()
        assert "ubuntu 22.04 / 24.04" in run.output and "nothing was changed" in run.output
        assert scratch.host.ssh("getent passwd jupyter-erin", check=False).returncode != 0
    finally:
        scratch.sh("cp /root/os-release.orig /usr/lib/os-release")


def test_a_key_with_the_wrong_fingerprint_is_refused_before_apt_trusts_it(scratch, docker_repo):
    docker_repo.serve_on(scratch.host)
    wrong = "0123456789ABCDEF0123456789ABCDEF01234567"
    data = {**BASE, "docker": {"source": "official", "repo_url": docker_repo.url, "key_fingerprint": wrong}}
    run, _ = scratch.deploy(data)
    assert run.returncode != 0
    assert "refusing the key from http://127.0.0.1:8765/repo/gpg" in run.output, run.explain()
    assert f"its fingerprint is {docker_repo.fingerprint}" in run.output and f"the pinned one is {wrong}" in run.output
    assert "Docker's signing key, fingerprint checked" in run.output and "[scratch]" in run.output
    assert scratch.host.ssh("test -e /etc/apt/keyrings/docker.gpg || test -e /etc/apt/sources.list.d/docker.sources", check=False).returncode != 0
    assert scratch.sh("dpkg-query -W -f='${Status}' docker.io") == "install ok installed", "the engine was left alone"


def test_switching_from_the_distro_engine_to_docker_packages(scratch, docker_repo):
    data = {**BASE, "docker": {"source": "official", "repo_url": docker_repo.url, "key_fingerprint": docker_repo.fingerprint}}
    changed = scratch.converge(data)
    assert "Docker engine | Docker packages" in changed
    installed = scratch.sh("dpkg-query -W -f='${Package} ${Status}\\n' | grep 'install ok installed' | cut -d' ' -f1")
    assert {"docker-ce", "docker-ce-cli", "containerd.io", "docker-buildx-plugin", "docker-compose-plugin"} <= set(installed.split())
    assert not {"docker.io", "containerd", "runc", "docker-compose"} & set(installed.split())
    assert scratch.sh("systemctl is-active docker") == "active"
    assert scratch.converge(data) == []
