"""Alerts and heartbeats (alerts in data; the URLs are secrets, labhub/secrets.py):

- on every host, the heartbeat script the nightly jobs' units run as they start and end, and
  each job's heartbeat URL in a root-only file (none: that job sends no heartbeat);
- on the control host (drift.enabled), with alerts on, the settings its nightly drift check
  sends alerts with (`./drift-check --alerts FILE`): the targets' URLs, in a root-only file.

No URL is ever in a unit file, on a command line or in pyinfra's output.
"""

from __future__ import annotations

import json

from pyinfra import host
from pyinfra.api import deploy

from labhub.alerts import STATE_FILE, settings
from labhub.config.alerts import HEARTBEAT_JOBS
from labhub.inventory import host_config
from labhub.local import REPO
from labhub.ops import apt, files

HEARTBEAT_SCRIPT = "/usr/local/sbin/labhub-heartbeat"
HEARTBEAT_DIR = "/etc/labhub/heartbeat"
ALERTS_DIR = "/etc/labhub/alerts"
SETTINGS_FILE = f"{ALERTS_DIR}/settings.json"


def heartbeat_files(config, host_name: str) -> list:
    """A job's heartbeat: "<style> <url>" ('{host}' made this host's name), root-only."""
    heartbeats = config.alerts.heartbeats
    return [
        files.ManagedFile(f"{HEARTBEAT_DIR}/{job}", f"{heartbeats.style} {url.get_secret_value().replace('{host}', host_name)}\n",
                          mode=0o600, secret=True)
        for job in HEARTBEAT_JOBS if job != "drift" and (url := getattr(heartbeats, job)) is not None
    ]


@deploy("Alerts")
def delivery():
    config = host_config(host)
    heartbeats = heartbeat_files(config, host.name)
    wanted = {file.path for file in heartbeats}
    control = config.drift.enabled and config.alerts.enabled
    if heartbeats:
        apt.packages(name="curl (the heartbeats)", install=["curl"], settings=config.apt)
    files.managed(
        name="Heartbeat script and URLs (root-only)",
        directories=[files.ManagedDirectory("/etc/labhub"), files.ManagedDirectory(HEARTBEAT_DIR, mode=0o700)],
        files=[files.ManagedFile(HEARTBEAT_SCRIPT, (REPO / "files" / "labhub-heartbeat").read_text(), mode=0o755), *heartbeats],
        absent=[f"{HEARTBEAT_DIR}/{job}" for job in HEARTBEAT_JOBS if f"{HEARTBEAT_DIR}/{job}" not in wanted],
    )
    files.managed(
        name="Alert settings of the nightly drift check (root-only)",
        directories=[files.ManagedDirectory(ALERTS_DIR, mode=0o700), files.ManagedDirectory("/var/lib/labhub"),
                     files.ManagedDirectory(STATE_FILE.rsplit("/", 1)[0], mode=0o700)] if control else [],
        files=[files.ManagedFile(SETTINGS_FILE, json.dumps(settings(config), indent=1) + "\n", mode=0o600, secret=True)] if control else [],
        absent=[] if control else [SETTINGS_FILE],
    )
