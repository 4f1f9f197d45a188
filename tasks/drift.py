"""The nightly drift check, on a control host (drift.enabled; it may be a lab server that
checks itself through '@local'): this project and its virtualenv in drift.checkout, the
inventory it checks with the secrets this run resolved (root-only), and a systemd
service + timer whose output goes to the journal; each run first removes reports older than
drift.keep_days. The control host reaches the other hosts over SSH as root, as the deploy does.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from pyinfra import host
from pyinfra.api import deploy

from labhub.config.alerts import HEARTBEAT_JOBS
from labhub.inventory import host_config, validated_configs
from labhub.local import REPO, local_path
from labhub.ops import apt, files, python, systemd
from labhub.secrets import secrets_file
from labhub.templates import render
from tasks.alerts import SETTINGS_FILE

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
    """The secrets of every host in this run, as the inventory's secrets file: the nightly
    check validates each host's data with them, and the host checks compare the files that
    hold them by digest (share credentials, the backup repository's, the directory's bind
    password), as the deploy does; the alerts' URLs are the ones it sends to."""
    tables: dict[str, dict[str, str]] = {}
    for config in validated_configs().values():
        for share in config.shares:
            if share.credentials:
                tables.setdefault(f"shares.{share.name}", {"username": share.credentials.username,
                                                           "password": share.credentials.password.get_secret_value()})
        credentials = config.backup.credentials
        if credentials:
            tables.setdefault("backup", {field: getattr(credentials, field).get_secret_value()
                                         for field in ("password", "aws_access_key_id", "aws_secret_access_key") if getattr(credentials, field)})
        if config.hub.ldap.credentials:
            tables.setdefault("ldap", {"bind_password": config.hub.ldap.credentials.bind_password.get_secret_value()})
        for target in config.alerts.targets:
            if target.url:
                tables.setdefault(f"alerts.{target.name}", {"url": target.url.get_secret_value()})
        beats = {job: url.get_secret_value() for job in HEARTBEAT_JOBS if (url := getattr(config.alerts.heartbeats, job))}
        if beats:
            tables.setdefault("alerts.heartbeat", beats)
    return "".join(f"[{table}]\n" + "".join(f"{key} = {json.dumps(value)}\n" for key, value in values.items()) + "\n"
                   for table, values in sorted(tables.items()))


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
        "alerts_flag": f" --alerts {SETTINGS_FILE}" if config.alerts.enabled else "",
        "on_calendar": drift.on_calendar,
        "keep_days": drift.keep_days,
    }
    systemd.timer("labhub-drift", render("labhub-drift.service", **values), render("labhub-drift.timer", **values))
