"""The lab's page in the hub (/services/lab/): its container is part of the hub's stack
(templates/compose.yaml, files/lab/); its host side is a helper run by systemd per request
on a root-only socket (files/labhub-lab-helper), the only way the page reaches disk use,
snapshots and restores. On by default with backups or quotas (LabHost.lab_page_on)."""

from __future__ import annotations

import json

from pyinfra import host
from pyinfra.api import deploy

from labhub.config import LabHost
from labhub.config.tls import tls_name
from labhub.inventory import host_config
from labhub.local import REPO, directory_files
from labhub.ops import apt, files, server, systemd
from labhub.templates import render
from labhub.ops.restic import ENV_FILE

PAGE = REPO / "files" / "lab"  # the service: app.py, templates/, static/
HELPER_SCRIPT = "/usr/local/sbin/labhub-lab-helper"
SOCKET = "/run/labhub-lab/helper.sock"  # its directory is mounted into the page's container
SOCKET_UNIT = "labhub-lab.socket"
UNITS = (f"{systemd.UNITS}/{SOCKET_UNIT}", f"{systemd.UNITS}/labhub-lab@.service")
HELPER_SETTINGS = "/etc/labhub/lab-page.json"  # what the helper may show and restore (no secret)
RESTORES_PER_HOUR = 10  # per member: enough to undo a bad afternoon, too few to fill a disk in a loop


def page_files(config: LabHost) -> dict[str, bytes]:
    """The page's files in the stack directory's lab/ (name -> content); none when it is off."""
    if not config.lab_page_on:
        return {}
    return directory_files(PAGE)


def helper_settings(config: LabHost, host_name: str) -> str:
    """The helper's settings: the snapshots' host name; the group folders whose members may
    restore (host folders, backed up, members_restore); where HTTPS is served (the admin view
    reads the certificate's end date there); where the drift check keeps its reports when
    this host is its control host."""
    hub = config.hub
    groups = [g for g in config.groups if g.members_restore and config.share_of(g) is None] if config.backup.enabled else []
    return json.dumps({
        "host": host_name,
        "restores_per_hour": RESTORES_PER_HOUR,
        "groups": [{"name": g.name, "host_group": g.host_group, "folder": g.path} for g in groups],
        "tls": {"name": tls_name(hub.public_url), "address": hub.local_address} if hub.tls_mode != "none" else None,
        "drift_reports": config.drift.report_dir,
    }, indent=1) + "\n"


def helper_files(config: LabHost, host_name: str) -> list:
    """The helper's script, its settings and its units (socket-activated, one process per request)."""
    values = {"socket": SOCKET, "env_file": ENV_FILE, "settings": HELPER_SETTINGS, "script": HELPER_SCRIPT}
    return [
        files.ManagedFile(HELPER_SCRIPT, (REPO / "files" / "labhub-lab-helper").read_text(), mode=0o755),
        files.ManagedFile(HELPER_SETTINGS, helper_settings(config, host_name)),
        files.ManagedFile(UNITS[0], render("labhub-lab.socket", **values)),
        files.ManagedFile(UNITS[1], render("labhub-lab@.service", **values)),
    ]


@deploy("Lab page")
def helper():
    config = host_config(host)
    if not config.hub.enabled or config.swarm.role == "worker":
        return
    if not config.lab_page_on:
        gone = files.managed(name="Lab page's helper removed (hub.lab_page off)", absent=[*UNITS, HELPER_SCRIPT, HELPER_SETTINGS])
        server.run_when_changed(name="Lab page's socket stopped", command=f"systemctl disable --now {SOCKET_UNIT}; systemctl daemon-reload", triggers=[gone])
        return
    apt.packages(name="python3, openssl (the helper's interpreter; it reads the served certificate)", install=["python3", "openssl"], settings=config.apt)
    units = files.managed(name="Lab page's helper: script, settings, socket and service",
                          directories=[files.ManagedDirectory("/etc/labhub")], files=helper_files(config, host.name))
    server.run_when_changed(name="systemd reloaded", command="systemctl daemon-reload", triggers=[units])
    systemd.service(name="Lab page's socket listening", unit=SOCKET_UNIT, restart_when=[units])
