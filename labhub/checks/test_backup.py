"""What tasks/backup.py promises: restic's secrets root-only and current (compared by digest,
never shown), the backup timer enabled and waiting, and a successful backup younger than
backup.max_age_hours: an older one, none yet, or a failed last run is drift that names the
age of the last good snapshot."""

import datetime
import hashlib
import json
import time

import pytest

from labhub.config import BACKUP_SECRETS_DIR
from labhub.ops.systemd import ServiceState
from tasks.backup import ENV_FILE, LAST_SUCCESS, PASSWORD_FILE, restic_env


def backup_of(target):
    if not target.config.backup.enabled:
        pytest.skip(f"{target.name} makes no backups (backup.enabled: False)")
    return target.config.backup


def test_repository_secrets_are_root_only_and_current(target):
    backup = backup_of(target)
    expected = {BACKUP_SECRETS_DIR: None, ENV_FILE: restic_env(target.config), PASSWORD_FILE: backup.credentials.password.get_secret_value() + "\n"}
    for path, content in expected.items():
        found = target.path(path)
        assert found, f"{path}: expected present, found missing"
        mode = 0o700 if content is None else 0o600
        owners = (found["owner"], found["group"], oct(found["mode"]))
        assert owners == ("root", "root", oct(mode)), f"{path}: expected root:root {mode:04o}, found {owners}"
        if content is not None:
            assert found.get("sha256") == hashlib.sha256(content.encode()).hexdigest(), f"{path}: content differs from the repository's current settings (not shown)"


def test_backup_timer_is_enabled_and_waiting(target):
    backup_of(target)
    timer = target.fact(ServiceState, unit="labhub-backup.timer")
    assert (timer["enabled"], timer["active"]) == ("enabled", "active"), f"timer labhub-backup.timer: expected enabled and active, found {timer['enabled'] or 'missing'} and {timer['active']}"


def test_the_last_backup_succeeded_recently(target):
    backup = backup_of(target)
    last = target.run(f"cat {LAST_SUCCESS}")
    service = target.fact(ServiceState, unit="labhub-backup.service")["active"]
    limit = f"a successful backup within {backup.max_age_hours} h"
    if last.rc != 0:
        assert False, f"backup: expected {limit}, found none yet (the timer runs {backup.on_calendar}; start one with systemctl start labhub-backup)"
    finished = json.loads(last.stdout)["finished"]
    age = (time.time() - finished) / 3600
    when = datetime.datetime.fromtimestamp(finished, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    assert service != "failed", f"backup: expected the last run to succeed, found labhub-backup.service failed (journalctl -u labhub-backup); the last good snapshot is {age:.0f} h old ({when})"
    assert age <= backup.max_age_hours, f"backup: expected {limit}, found the last good snapshot {age:.0f} h old ({when})"
