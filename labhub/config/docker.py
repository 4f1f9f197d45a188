"""Docker Engine: where it comes from, daemon.json; and how package steps ride through a busy
or broken package manager."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from labhub.config.common import Model, check_url
from labhub.config.swarm import NODE_LABEL


# Docker's release key (https://download.docker.com/linux/debian/gpg), as Docker documents it.
DOCKER_RELEASE_KEY_FINGERPRINT = "9DC858229FC7DD38854AE2D88D81803C0EBFCD88"
DOCKER_DOWNLOAD_URL = "https://download.docker.com/linux"

# /etc/docker/daemon.json unless data says otherwise: rotate container logs so a chatty
# notebook cannot fill the disk, and keep containers running while dockerd restarts. CIS
# Docker Benchmark 2.x: no traffic between containers on the default bridge (the stack has
# its own network), no container gains privileges through setuid binaries, and published
# ports are forwarded by the kernel (iptables) instead of a docker-proxy process per port
# (2.16; the loopback ports of the hub and the registry then go through route_localnet, which
# dockerd sets: measured working on the test hosts, the swarm's included).
DAEMON_JSON_DEFAULTS: dict[str, Any] = {
    "log-driver": "json-file",
    "log-opts": {"max-size": "10m", "max-file": "3"},
    "live-restore": True,
    "icc": False,
    "no-new-privileges": True,
    "userland-proxy": False,
}


# apt fields (version pins, suites, components): what Debian's policy allows in them.
APT_WORD = re.compile(r"[A-Za-z0-9.+:~_/-]+")


# Operating systems this tool supports: os-release ID -> VERSION_ID values.
SUPPORTED_OS = {"debian": ("12", "13"), "ubuntu": ("22.04", "24.04")}


class DockerEngine(Model):
    """Where Docker Engine and Compose v2 come from, and how dockerd is configured."""

    source: Literal["official", "distro", "mirror"] = Field(
        "official",
        description="'official': Docker's apt repository; 'distro': the distribution's docker.io + Compose v2; "
        "'mirror': Docker's packages from an apt mirror you name",
    )
    version: str | None = Field(None, description="pin docker-ce/docker-ce-cli to this apt version (official/mirror); none: newest")
    repo_url: str | None = Field(None, description=f"apt URL (official: {DOCKER_DOWNLOAD_URL}/<debian|ubuntu>; mirror: required)")
    repo_suite: str | None = Field(None, description="apt suite (official: the OS codename; mirror: required)")
    repo_component: str = Field("stable", description="apt component")
    key_url: str | None = Field(None, description="URL of the repository's signing key (official: <repo_url>/gpg; mirror: required)")
    key_fingerprint: str | None = Field(
        None,
        description=f"the signing key's fingerprint, checked before apt trusts the key (official: {DOCKER_RELEASE_KEY_FINGERPRINT}; mirror: required)",
    )
    daemon_json: dict[str, Any] = Field(
        default_factory=dict,
        description="keys merged over the defaults of /etc/docker/daemon.json (json-file logs 10m x 3, live-restore, icc off, no-new-privileges, userland proxy off); "
        "a key set to None is dropped",
    )

    @field_validator("key_fingerprint")
    @classmethod
    def _fingerprint(cls, fingerprint: str | None) -> str | None:
        if fingerprint is None:
            return None
        normalised = fingerprint.replace(" ", "").upper()
        if not re.fullmatch(r"[0-9A-F]{40}", normalised):
            raise ValueError("a key fingerprint must be 40 hexadecimal digits (spaces allowed)")
        return normalised

    @field_validator("repo_url", "key_url")
    @classmethod
    def _url(cls, url: str | None) -> str | None:
        check_url(url)
        return url.rstrip("/") if url else url

    @field_validator("version", "repo_suite", "repo_component")
    @classmethod
    def _apt_word(cls, word: str | None) -> str | None:
        if word is not None and not APT_WORD.fullmatch(word):
            raise ValueError("must be letters, digits and . + : ~ _ / - only (as apt writes versions and suites)")
        return word

    @field_validator("daemon_json")
    @classmethod
    def _no_tcp_socket(cls, daemon_json: dict[str, Any]) -> dict[str, Any]:
        hosts = daemon_json.get("hosts") or []
        if not isinstance(hosts, list):
            raise ValueError("daemon_json.hosts must be a list of sockets, e.g. ['unix:///run/docker.sock']")
        if any(not str(h).startswith(("unix://", "fd://")) for h in hosts):
            raise ValueError("daemon_json.hosts may only name unix:// or fd:// sockets: a TCP Docker port is root for anyone who reaches it")
        return daemon_json

    @model_validator(mode="after")
    def _source_fields(self) -> DockerEngine:
        repo_fields = ("version", "repo_url", "repo_suite", "key_url", "key_fingerprint")
        if self.source == "distro":
            given = [f for f in repo_fields if getattr(self, f) is not None]
            if given:
                raise ValueError(f"{', '.join(given)} only apply to source 'official' or 'mirror', not 'distro'")
        if self.source == "mirror":
            missing = [f for f in ("repo_url", "repo_suite", "key_url", "key_fingerprint") if getattr(self, f) is None]
            if missing:
                raise ValueError(f"source 'mirror' needs {', '.join(missing)}")
        return self

    def daemon_config(self, swarm_node: str | None = None) -> dict[str, Any]:
        """daemon.json; on a swarm node (named by its inventory name), the engine label that
        names it to the manager, and no live-restore, which swarm mode refuses."""
        swarm = {"labels": [f"{NODE_LABEL}={swarm_node}"], "live-restore": False} if swarm_node else {}
        merged = {**DAEMON_JSON_DEFAULTS, **swarm, **self.daemon_json}
        return {key: value for key, value in merged.items() if value is not None}


class Apt(Model):
    """How package steps ride through a busy or broken package manager."""

    lock_timeout: int = Field(
        600,
        description="seconds a package step waits for the dpkg lock (unattended-upgrades and cloud-init hold it for "
        "minutes after a fresh server boots; so does a deploy cut off a moment ago) before it fails, naming the holder",
    )
    retries: int = Field(3, description="times `apt-get update` and downloads are tried again while a package source is unreachable (5, 10, 15 s apart)")

    @field_validator("lock_timeout")
    @classmethod
    def _timeout(cls, seconds: int) -> int:
        if not 0 <= seconds <= 86400:
            raise ValueError("must be 0-86400 seconds")
        return seconds

    @field_validator("retries")
    @classmethod
    def _retries(cls, retries: int) -> int:
        if not 0 <= retries <= 10:
            raise ValueError("must be 0-10")
        return retries
