"""The parts of tasks/docker.py that decide what to install, for every supported OS,
including Ubuntu, which the test hosts (Debian 13) do not run."""

import pytest
from pyinfra.api import DeployError

from labhub.inventory import validate_host_data
from tasks import docker

pytestmark = pytest.mark.quick

UBUNTU_NOBLE = {"id": "ubuntu", "version_id": "24.04", "codename": "noble", "arch": "amd64"}
UBUNTU_JAMMY = {"id": "ubuntu", "version_id": "22.04", "codename": "jammy", "arch": "arm64"}
DEBIAN_BOOKWORM = {"id": "debian", "version_id": "12", "codename": "bookworm", "arch": "amd64"}


class FakeHost:
    name = "lab1"


@pytest.fixture(autouse=True)
def named_host(monkeypatch):
    monkeypatch.setattr(docker, "host", FakeHost())


def engine(data: dict):
    return validate_host_data("lab1", {"docker": data}).docker


def test_official_repository_follows_docker_layout_for_ubuntu():
    repo = docker.repository(engine({}), UBUNTU_NOBLE)
    assert repo["url"] == "https://download.docker.com/linux/ubuntu"
    assert repo["suite"] == "noble" and repo["component"] == "stable"
    assert repo["key_url"] == "https://download.docker.com/linux/ubuntu/gpg"
    assert repo["key_fingerprint"] == "9DC858229FC7DD38854AE2D88D81803C0EBFCD88"
    assert docker.repository(engine({}), UBUNTU_JAMMY)["arch"] == "arm64"


def test_the_apt_source_is_deb822_signed_by_the_checked_keyring():
    from labhub.templates import render

    text = render("docker.sources", **docker.repository(engine({}), DEBIAN_BOOKWORM))
    assert "URIs: https://download.docker.com/linux/debian\nSuites: bookworm\nComponents: stable\n" in text
    assert "Signed-By: /etc/apt/keyrings/docker.gpg" in text


def test_mirror_overrides_everything():
    mirror = engine({"source": "mirror", "repo_url": "https://apt.lab.example/docker", "repo_suite": "noble-docker",
                     "repo_component": "main", "key_url": "https://apt.lab.example/key.asc", "key_fingerprint": "AB" * 20})
    repo = docker.repository(mirror, UBUNTU_NOBLE)
    assert (repo["url"], repo["suite"], repo["component"], repo["key_url"], repo["key_fingerprint"]) == (
        "https://apt.lab.example/docker", "noble-docker", "main", "https://apt.lab.example/key.asc", "AB" * 20)


def test_distro_packages_bring_compose_v2_on_ubuntu():
    for release in (UBUNTU_NOBLE, UBUNTU_JAMMY):
        docker.check_supported(release, engine({"source": "distro"}))
        assert docker.DISTRO_PACKAGES[release["id"], release["version_id"]] == ("docker.io", "docker-compose-v2")


def test_distro_source_is_refused_where_there_is_no_compose_v2():
    docker.check_supported(DEBIAN_BOOKWORM, engine({}))  # official works on Debian 12
    with pytest.raises(DeployError, match="debian 12 packages no Docker Compose v2.*use 'official' or 'mirror'"):
        docker.check_supported(DEBIAN_BOOKWORM, engine({"source": "distro"}))


@pytest.mark.parametrize("release", [("ubuntu", "20.04"), ("debian", "11"), ("fedora", "41")])
def test_other_systems_are_refused_before_any_change(release):
    with pytest.raises(DeployError, match="host 'lab1'.*is not supported.*nothing was changed"):
        docker.check_supported({"id": release[0], "version_id": release[1], "codename": "", "arch": "amd64"}, engine({}))


def test_version_pin_applies_to_engine_and_cli_only():
    assert docker.pinned(docker.DOCKER_CE_PACKAGES, "5:27.3.1-1~ubuntu.24.04~noble") == [
        "docker-ce=5:27.3.1-1~ubuntu.24.04~noble", "docker-ce-cli=5:27.3.1-1~ubuntu.24.04~noble",
        "containerd.io", "docker-buildx-plugin", "docker-compose-plugin"]
