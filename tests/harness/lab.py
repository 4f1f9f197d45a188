"""The test lab: three test hosts, one per Docker source, converged by one pyinfra run.

Before the deploy, each host is given the kind of hand-made state a real lab server has
(an extra member in `docker`, a hub user in `sudo` with a password, a departed member,
conflicting packages), so that the host checks in labhub/checks would fail if the deploy did
not put it right.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from tests.harness import cli
from tests.harness.aptrepo import FakeDockerRepo
from tests.harness.fake_docker_repo import DOCKER_VERSION
from tests.harness.hosts import Lab, started_hosts, write_inventory

HAND_MADE_STATE = {
    "lab-distro": """
        groupadd --system docker
        useradd --create-home mallory && gpasswd --add mallory docker
        useradd --create-home --groups sudo --shell /bin/bash jupyter-alice
        echo 'jupyter-alice:hunter2' | chpasswd
        useradd --create-home jupyter-olduser
    """,
    # Debian's containerd and runc conflict with Docker's containerd.io.
    "lab-official": "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq containerd runc >/dev/null",
}


# The host layer's test hosts run no hub (tests/harness/hublab.py has one that does).
NO_HUB = {"enabled": False}

# Share credentials of the test lab, in the secrets file next to its inventory.
SHARE_CREDENTIALS = {"data": ("labreader", "Lab-Data-Pw-31!"), "analysis": ("labwriter", "Lab-Analysis-Pw-47?")}


def write_secrets(inventory: Path, credentials: dict[str, tuple[str, str]], backup_password: str | None = None) -> Path:
    from labhub.secrets import secrets_file

    path = secrets_file(inventory)
    shares = "".join(f'[shares.{name}]\nusername = "{user}"\npassword = "{password}"\n\n' for name, (user, password) in credentials.items())
    path.write_text(shares + (f'[backup]\npassword = "{backup_password}"\n' if backup_password else ""))
    path.chmod(0o600)
    return path


def lab_data(repo: FakeDockerRepo) -> dict[str, dict]:
    return {
        "lab-distro": {
            "hub": NO_HUB,
            "docker": {"source": "distro"},
            "admins": [{"name": "labadmin", "uid": 1500}, "opsadmin"],
            "users": [
                "alice",
                {"name": "bob", "uid": 2002},
                {"name": "carol", "group": "physics", "shell": "/bin/sh"},
                {"name": "dave", "admin": True},
            ],
            # No CIFS in a container's kernel: fstab and credentials are written, nothing mounted.
            "mount_shares": False,
            "shares": [
                {"name": "data", "server": "files.example.org", "share": "data", "mount_point": "/mnt/data", "read_only": True},
                {"name": "analysis", "server": "files.example.org", "share": "analysis", "mount_point": "/mnt/analysis",
                 "uid": "jupyter-alice", "gid": "users", "domain": "INSTITUTE"},
            ],
        },
        "lab-official": {
            "hub": NO_HUB,
            "docker": {"source": "official", "repo_url": repo.url, "key_fingerprint": repo.fingerprint},
            "admins": ["labadmin"],
            "users": ["alice"],
        },
        "lab-mirror": {
            "hub": NO_HUB,
            "docker": {
                "source": "mirror",
                "repo_url": repo.url,
                "repo_suite": "lab-mirror",
                "repo_component": "docker",
                "key_url": f"{repo.url}/gpg",
                "key_fingerprint": repo.fingerprint,
                "version": DOCKER_VERSION,
                "daemon_json": {"log-opts": {"max-size": "50m", "max-file": "5"}, "live-restore": None, "max-concurrent-downloads": 6},
            },
        },
    }


@contextlib.contextmanager
def converged_lab(workdir: Path, image: str, key: Path, repo: FakeDockerRepo) -> Iterator[Lab]:
    data = lab_data(repo)
    with started_hosts(list(data), image, key) as hosts:
        for name, commands in HAND_MADE_STATE.items():
            hosts[name].exec(commands)
        for name in ("lab-official", "lab-mirror"):
            repo.serve_on(hosts[name])
        inventory = write_inventory(workdir / "lab_hosts.py", [(hosts[name], data[name]) for name in data])
        write_secrets(inventory, SHARE_CREDENTIALS)
        lab = Lab(inventory, hosts, data)
        lab.first_run = cli.converge(inventory)
        yield lab
