"""What tasks/docker.py promises: Docker from the source in data, the apt source and its key
when Docker's packages are used, daemon.json as data says, dockerd running, no TCP port."""

import hashlib
import json
import re

from pyinfra.facts.deb import DebPackages

from labhub.checks.target import DOCKER_INFO
from labhub.ops.apt import KeyFingerprints
from labhub.ops.files import FileLines
from labhub.ops.server import OsRelease
from labhub.ops.systemd import ServiceState
from labhub.templates import render
from tasks.docker import (
    APT_SOURCE,
    CONFLICTING_PACKAGES,
    DAEMON_JSON,
    DISTRO_PACKAGES,
    DOCKER_CE_PACKAGES,
    KEYRING,
    pinned,
    repository,
)


def test_docker_packages_come_from_the_configured_source(target):
    docker = target.config.docker
    installed = target.fact(DebPackages)
    os_release = target.fact(OsRelease)
    if docker.source == "distro":
        wanted, unwanted = list(DISTRO_PACKAGES[os_release["id"], os_release["version_id"]]), DOCKER_CE_PACKAGES
    else:
        wanted, unwanted = pinned(DOCKER_CE_PACKAGES, docker.version), CONFLICTING_PACKAGES
    for spec in wanted:
        name, _, version = spec.partition("=")
        assert name in installed, f"package {name}: expected installed (source '{docker.source}'), found not installed"
        if version:
            assert version in installed[name], f"package {name}: expected version {version}, found {sorted(installed[name])}"
    present = sorted(set(unwanted) & set(installed))
    assert not present, f"packages that conflict with source '{docker.source}': expected none, found {present}"


def test_docker_apt_source_and_key_match_data(target):
    docker = target.config.docker
    source, keyring = target.path(APT_SOURCE), target.path(KEYRING)
    if docker.source == "distro":
        assert not source, f"{APT_SOURCE}: expected absent with source 'distro', found present"
        assert not keyring, f"{KEYRING}: expected absent with source 'distro', found present"
        return
    repo = repository(docker, target.fact(OsRelease))
    assert source, f"{APT_SOURCE}: expected present, found missing"
    expected = hashlib.sha256(render("docker.sources", **repo).encode()).hexdigest()
    assert source.get("sha256") == expected, f"{APT_SOURCE}: content differs from what data says"
    fingerprints = target.fact(KeyFingerprints, path=KEYRING)
    assert fingerprints == [repo["key_fingerprint"]], (
        f"{KEYRING}: expected exactly key {repo['key_fingerprint']}, found {fingerprints or 'no key'}"
    )


def test_daemon_json_is_what_data_says(target):
    daemon_json = target.path(DAEMON_JSON)
    assert daemon_json, f"{DAEMON_JSON}: expected present, found missing"
    found = (daemon_json["owner"], daemon_json["group"], oct(daemon_json["mode"]))
    assert found == ("root", "root", "0o644"), f"{DAEMON_JSON}: expected root:root 0644, found {found}"
    expected = target.config.daemon_config(target.name)
    try:
        actual = json.loads("\n".join(target.fact(FileLines, path=DAEMON_JSON) or []))
    except json.JSONDecodeError as error:
        raise AssertionError(f"{DAEMON_JSON}: expected valid JSON, found: {error}") from None
    assert actual == expected, f"{DAEMON_JSON}: expected {expected}, found {actual}"


def test_dockerd_is_enabled_and_running(target):
    docker = target.fact(ServiceState, unit="docker.service")
    assert docker["enabled"] == "enabled", f"docker.service: expected enabled, found {docker['enabled'] or 'no such unit'}"
    assert docker["active"] == "active", f"docker.service: expected running, found {docker['active'] or 'no such unit'}"
    info = target.read(DOCKER_INFO)  # fails as "docker: expected it to answer, found: ..."
    assert info.splitlines()[-1].lstrip("v").startswith("2."), f"docker compose: expected v2, found {info}"


def test_no_tcp_docker_port(target):
    """A swarm node's engine listens for the swarm (2377 on the manager, 7946): mutual TLS
    between nodes, not the Docker API. Without the userland proxy, dockerd itself holds the
    ports containers publish (forwarded by iptables): those are not the API either."""
    listeners = target.run("ss -H -ltnp").stdout.splitlines()
    published = re.findall(r":(\d+)->", target.run("docker ps --format '{{.Ports}}'").stdout)
    own_ports = [f":{port} " for port in (*published, *(("2377", "7946") if target.config.swarm.role else ()))]
    docker_tcp = [line for line in listeners if ("dockerd" in line and not any(port in line for port in own_ports)) or ":2375 " in line or ":2376 " in line]
    assert not docker_tcp, f"Docker API on TCP: expected none, found {docker_tcp}"
