"""The nightly drift check, on a control host (drift.enabled; it may be a lab server that
checks itself through '@local'): this project and its virtualenv in drift.checkout, the
inventory it checks with the share credentials this run resolved (root-only), and a systemd
service + timer whose output goes to the journal; each run first removes reports older than
drift.keep_days. The control host reaches the other hosts over SSH as root, as the deploy does.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from pyinfra import host
from pyinfra.api import deploy

from labhub.inventory import host_config, validated_configs
from labhub.local import REPO, local_path
from labhub.ops import apt, files, python, systemd
from labhub.secrets import secrets_file
from labhub.templates import render

# What the nightly check needs of the project: the deploy (for its plan) and the host checks.
# The host checks are part of the labhub package: nothing of tests/ is needed.
PROJECT = ("deploy.py", "config.py", "requirements.txt", "drift-check", "labhub", "tasks", "templates", "files",
           "group_data", "inventories")


def project_files() -> dict[str, bytes]:
    found = {}
    for part in PROJECT:
        path = REPO / part
        for file in [path] if path.is_file() else sorted(path.rglob("*")):
            if file.is_file() and "__pycache__" not in file.parts and not file.name.endswith((".pyc", ".secrets.toml")):
                found[str(file.relative_to(REPO))] = file.read_bytes()
    return found


def lab_secrets() -> str:
    """Share credentials of every host in this run, as the inventory's secrets file."""
    shares = {}
    for config in validated_configs().values():
        for share in config.shares:
            if share.credentials:
                shares.setdefault(share.name, share.credentials)
    return "".join(
        f"[shares.{name}]\nusername = {json.dumps(c.username)}\npassword = {json.dumps(c.password.get_secret_value())}\n\n"
        for name, c in sorted(shares.items())
    )


@deploy("Drift check")
def nightly():
    config = host_config(host)
    drift = config.drift
    if not drift.enabled:
        return
    root = drift.checkout
    inventory = f"inventories/{Path(drift.inventory).name}"
    copied = {**project_files(), inventory: local_path(drift.inventory).read_bytes()}
    directories = sorted({str(Path(name).parent) for name in copied} - {"."})

    apt.packages(name="python3-venv", install=["python3-venv"], settings=config.apt)
    files.managed(
        name="The project on the control host",
        directories=[files.ManagedDirectory(root, mode=0o700), *[files.ManagedDirectory(f"{root}/{d}") for d in directories]],
        files=[
            *[files.ManagedFile(f"{root}/{name}", content, mode=0o755 if name == "drift-check" else 0o644) for name, content in copied.items()],
            files.ManagedFile(f"{root}/{secrets_file(inventory)}", lab_secrets(), mode=0o600, secret=True),
        ],
    )
    requirements = copied["requirements.txt"]
    python.venv(
        name="Its virtualenv",
        directory=root,
        requirements=f"{root}/requirements.txt",
        digest=hashlib.sha256(requirements).hexdigest()[:16],
    )
    values = {
        "inventory": inventory,
        "checkout": root,
        "report_dir": drift.report_dir,
        "converge_flag": " --converge" if drift.converge else "",
        "on_calendar": drift.on_calendar,
        "keep_days": drift.keep_days,
    }
    systemd.timer("labhub-drift", render("labhub-drift.service", **values), render("labhub-drift.timer", **values))
