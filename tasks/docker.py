"""Docker Engine and Compose v2 from the source the data names; /etc/docker/daemon.json;
dockerd enabled and running, restarted only when daemon.json changed. Nothing listens on a
TCP Docker port: the model refuses `hosts` entries other than unix:// and fd://."""

from __future__ import annotations

import json

from pyinfra import host
from pyinfra.api import DeployError, deploy

from labhub.config import DOCKER_DOWNLOAD_URL, DOCKER_RELEASE_KEY_FINGERPRINT, SUPPORTED_OS, DockerEngine
from labhub.inventory import host_config
from labhub.ops import apt, facts, files, systemd
from labhub.ops.server import OsRelease
from labhub.templates import render

DOCKER_CE_PACKAGES = ("docker-ce", "docker-ce-cli", "containerd.io", "docker-buildx-plugin", "docker-compose-plugin")
# Docker's install guide removes these first: they ship the same files as Docker's packages.
CONFLICTING_PACKAGES = ("docker.io", "docker-doc", "docker-compose", "docker-compose-v2", "podman-docker", "containerd", "runc")
# The distribution's own engine with Compose v2 (the `docker compose` plugin), per release.
# Debian 13 ships the CLI apart from the daemon; Debian 12 has only Compose v1.
DISTRO_PACKAGES = {
    ("debian", "13"): ("docker.io", "docker-cli", "docker-compose"),
    ("ubuntu", "22.04"): ("docker.io", "docker-compose-v2"),
    ("ubuntu", "24.04"): ("docker.io", "docker-compose-v2"),
}
# What fetching and checking a signing key needs on a minimal server.
KEY_TOOLS = ("ca-certificates", "curl", "gpg")

KEYRING = "/etc/apt/keyrings/docker.gpg"
APT_SOURCE = "/etc/apt/sources.list.d/docker.sources"
DAEMON_JSON = "/etc/docker/daemon.json"


def check_supported(os_release: dict, docker: DockerEngine) -> None:
    release = f"{os_release['id']} {os_release['version_id']}"
    if os_release["version_id"] not in SUPPORTED_OS.get(os_release["id"], ()):
        supported = ", ".join(f"{name} {' / '.join(versions)}" for name, versions in SUPPORTED_OS.items())
        raise DeployError(f"host '{host.name}': {release} is not supported (supported: {supported}); nothing was changed")
    if docker.source == "distro" and (os_release["id"], os_release["version_id"]) not in DISTRO_PACKAGES:
        raise DeployError(
            f"host '{host.name}': {release} packages no Docker Compose v2, so docker.source 'distro' cannot work "
            "there; use 'official' or 'mirror'. Nothing was changed"
        )


def repository(docker: DockerEngine, os_release: dict) -> dict:
    """The apt source of Docker's packages: Docker's own layout unless data overrides it."""
    url = docker.repo_url or f"{DOCKER_DOWNLOAD_URL}/{os_release['id']}"
    return {
        "url": url,
        "suite": docker.repo_suite or os_release["codename"],
        "component": docker.repo_component,
        "arch": os_release["arch"],
        "keyring": KEYRING,
        "key_url": docker.key_url or f"{url}/gpg",
        "key_fingerprint": docker.key_fingerprint or DOCKER_RELEASE_KEY_FINGERPRINT,
    }


def pinned(packages: tuple[str, ...], version: str | None) -> list[str]:
    pins = ("docker-ce", "docker-ce-cli")
    return [f"{name}={version}" if version and name in pins else name for name in packages]


@deploy("Docker engine")
def engine():
    config = host_config(host)
    docker = config.docker
    os_release = facts.get(OsRelease)
    check_supported(os_release, docker)

    if docker.source == "distro":
        apt.packages(
            name="Docker packages from the distribution",
            install=DISTRO_PACKAGES[os_release["id"], os_release["version_id"]],
            remove=DOCKER_CE_PACKAGES,
            settings=config.apt,
        )
        files.managed(name="No Docker apt source", absent=(APT_SOURCE, KEYRING))
    else:
        repo = repository(docker, os_release)
        apt.packages(name="Tools to fetch and check the signing key", install=KEY_TOOLS, settings=config.apt)
        apt.signing_key(
            name="Docker's signing key, fingerprint checked",
            url=repo["key_url"],
            fingerprint=repo["key_fingerprint"],
            keyring=KEYRING,
        )
        source = files.managed(
            name="Docker apt source",
            files=[files.ManagedFile(APT_SOURCE, render("docker.sources", **repo))],
        )
        apt.packages(
            name="Docker packages",
            install=pinned(DOCKER_CE_PACKAGES, docker.version),
            remove=CONFLICTING_PACKAGES,
            refresh_when=[source],
            settings=config.apt,
        )

    daemon_json = files.managed(
        name="daemon.json",
        files=[
            files.ManagedFile(
                DAEMON_JSON,
                json.dumps(config.daemon_config(host.name), indent=2, sort_keys=True) + "\n",
                validate="dockerd --validate --config-file {}",
            )
        ],
    )
    systemd.service(name="dockerd enabled and running", unit="docker.service", restart_when=[daemon_json])
