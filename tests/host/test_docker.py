"""What tasks/docker.py promises: Docker from the source in data, the apt source and its key
when Docker's packages are used, daemon.json as data says, dockerd running, no TCP port."""

import json

from pyinfra.facts.deb import DebPackages

from labhub.ops import KeyFingerprints, OsRelease
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
    source, keyring = target.host.file(APT_SOURCE), target.host.file(KEYRING)
    if docker.source == "distro":
        assert not source.exists, f"{APT_SOURCE}: expected absent with source 'distro', found present"
        assert not keyring.exists, f"{KEYRING}: expected absent with source 'distro', found present"
        return
    repo = repository(docker, target.fact(OsRelease))
    assert source.exists, f"{APT_SOURCE}: expected present, found missing"
    assert source.content_string == render("docker.sources", **repo), f"{APT_SOURCE}: content differs from what data says"
    fingerprints = target.fact(KeyFingerprints, path=KEYRING)
    assert fingerprints == [repo["key_fingerprint"]], (
        f"{KEYRING}: expected exactly key {repo['key_fingerprint']}, found {fingerprints or 'no key'}"
    )


def test_daemon_json_is_what_data_says(target):
    daemon_json = target.host.file(DAEMON_JSON)
    assert daemon_json.exists, f"{DAEMON_JSON}: expected present, found missing"
    found = (daemon_json.user, daemon_json.group, oct(daemon_json.mode))
    assert found == ("root", "root", "0o644"), f"{DAEMON_JSON}: expected root:root 0644, found {found}"
    expected = target.config.docker.daemon_config()
    try:
        actual = json.loads(daemon_json.content_string)
    except json.JSONDecodeError as error:
        raise AssertionError(f"{DAEMON_JSON}: expected valid JSON, found: {error}") from None
    assert actual == expected, f"{DAEMON_JSON}: expected {expected}, found {actual}"


def test_dockerd_is_enabled_and_running(target):
    docker = target.host.service("docker")
    assert docker.is_enabled, "docker.service: expected enabled, found disabled"
    assert docker.is_running, "docker.service: expected running, found stopped"
    info = target.host.run("docker info --format '{{.ServerVersion}} {{.LoggingDriver}}' && docker compose version --short")
    assert info.rc == 0, f"docker: expected a working engine and Compose v2, found: {info.stderr.strip()}"
    assert info.stdout.splitlines()[-1].lstrip("v").startswith("2."), f"docker compose: expected v2, found {info.stdout}"


def test_no_tcp_docker_port(target):
    listeners = target.host.run("ss -H -ltnp").stdout.splitlines()
    docker_tcp = [line for line in listeners if "dockerd" in line or ":2375 " in line or ":2376 " in line]
    assert not docker_tcp, f"Docker API on TCP: expected none, found {docker_tcp}"
