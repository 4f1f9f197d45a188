"""Backups with restic, and the restore that brings a reinstalled server back.

- `restic()`: restic and sqlite3, the repository's secrets in root-only files, the backup and
  restore scripts, and the repository opened with the lab's password (initialised when a
  backing-up host finds none). On a host that backs up or restores.
- `restored()`: with `restore` in data, the lab from a snapshot (homes, the hub's database and
  passwords, its secrets, the registry if backed up), once, before the hub starts.
- `nightly()`: the systemd service and timer that run files/labhub-backup.
- `member_files()` (restore-files.py): one member's file or folder from a snapshot, into her
  ~/restored/<date>/, by files/labhub-restore-files.

Snapshots are tagged `labhub` and made under the server's inventory name (restic --host), so
a reinstalled server with the same name finds its own "latest".
"""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import DeployError, deploy

from labhub.config import BACKUP_SECRETS_DIR, LabHost
from labhub.inventory import host_config
from labhub.local import REPO
from labhub.ops import apt, files, restic as restic_ops, systemd
from labhub.templates import render
from tasks.alerts import HEARTBEAT_SCRIPT
from tasks.hub import PROJECT

STATE_DIR = "/var/lib/labhub/backup"  # staging, last-success.json, the repository stamp
ENV_FILE = restic_ops.ENV_FILE
PASSWORD_FILE = f"{BACKUP_SECRETS_DIR}/password"
BACKUP_SCRIPT = "/usr/local/sbin/labhub-backup"
RESTORE_SCRIPT = "/usr/local/sbin/labhub-restore"
RESTORE_FILES_SCRIPT = "/usr/local/sbin/labhub-restore-files"
LAST_SUCCESS = f"{STATE_DIR}/last-success.json"
REPOSITORY_STAMP = f"{STATE_DIR}/repository"
HUB_DATA_VOLUME = f"{PROJECT}_hub-data"
REGISTRY_VOLUME = f"{PROJECT}_registry-data"


def restic_env(config: LabHost) -> str:
    """The repository's settings for restic: root-only, read by the unit and the scripts."""
    backup, credentials = config.backup, config.backup.credentials
    lines = [f"RESTIC_REPOSITORY='{backup.repository}'", f"RESTIC_PASSWORD_FILE='{PASSWORD_FILE}'"]
    if credentials.aws_access_key_id and credentials.aws_secret_access_key:
        lines += [
            f"AWS_ACCESS_KEY_ID='{credentials.aws_access_key_id.get_secret_value()}'",
            f"AWS_SECRET_ACCESS_KEY='{credentials.aws_secret_access_key.get_secret_value()}'",
        ]
    return "\n".join(lines) + "\n"


def backup_unit_values(config: LabHost, host_name: str) -> dict:
    backup = config.backup
    return {
        "host": host_name,
        "env_file": ENV_FILE,
        "stack_dir": config.hub.stack_dir,
        "hub_data_volume": HUB_DATA_VOLUME,
        "registry_volume": REGISTRY_VOLUME if backup.registry else "",
        # Research groups' folders on the host (those on shares are the file server's to back up).
        "group_folders": " ".join(f"{g.host_group}:{g.path}" for g in config.groups if config.share_of(g) is None),
        "keep_daily": backup.keep_daily,
        "keep_weekly": backup.keep_weekly,
        "keep_monthly": backup.keep_monthly,
        "state_dir": STATE_DIR,
        "script": BACKUP_SCRIPT,
        "heartbeat": HEARTBEAT_SCRIPT,
        "on_calendar": backup.on_calendar,
    }


@deploy("Backup")
def restic():
    config = host_config(host)
    if not (config.backup.enabled or config.restore):
        return
    apt.packages(name="restic, sqlite3", install=["restic", "sqlite3"], settings=config.apt)
    secrets = files.managed(
        name="Repository secrets and the backup scripts",
        directories=[
            files.ManagedDirectory("/etc/labhub"),
            files.ManagedDirectory(BACKUP_SECRETS_DIR, mode=0o700),
            files.ManagedDirectory("/var/lib/labhub"),
            files.ManagedDirectory(STATE_DIR, mode=0o700),
        ],
        files=[
            files.ManagedFile(ENV_FILE, restic_env(config), mode=0o600, secret=True),
            files.ManagedFile(PASSWORD_FILE, config.backup.credentials.password.get_secret_value() + "\n", mode=0o600, secret=True),
            files.ManagedFile(BACKUP_SCRIPT, (REPO / "files" / "labhub-backup").read_text(), mode=0o755),
            files.ManagedFile(RESTORE_SCRIPT, (REPO / "files" / "labhub-restore").read_text(), mode=0o755),
            files.ManagedFile(RESTORE_FILES_SCRIPT, (REPO / "files" / "labhub-restore-files").read_text(), mode=0o755),
        ],
    )
    restic_ops.repository(
        name="Repository opens with the password",
        env_file=ENV_FILE,
        stamp=REPOSITORY_STAMP,
        initialise=config.backup.enabled and not config.restore,
        check_when=[secrets],
    )


@deploy("Restore")
def restored():
    config = host_config(host)
    if not config.restore:
        return None
    return restic_ops.restored(
        name=f"Lab restored from snapshot {config.restore}",
        snapshot=config.restore,
        backup_host=host.name,
        project=PROJECT,
        stack_dir=config.hub.stack_dir,
        force=config.restore_force,
    )


@deploy("Backup")
def nightly(restore=None):
    """The timer; and, right after a restore (`restore`: that operation), a backup of the
    restored server, so that its first night is not its first backup: until then the drift
    check would say it has none, and raise an alert."""
    config = host_config(host)
    if not config.backup.enabled:
        return
    values = backup_unit_values(config, host.name)
    timer = systemd.timer("labhub-backup", render("labhub-backup.service", **values), render("labhub-backup.timer", **values))
    if restore is not None:
        systemd.run_now(name="A backup of the restored server", unit="labhub-backup.service", when=[restore])
    return timer


@deploy("Restore files")
def member_files():
    config = host_config(host)
    request = config.restore_files
    if request is None:
        raise DeployError(f"host '{host.name}': restore-files.py needs --data member=<name> --data path=<file or folder in her home> "
                          "(and --data snapshot=<latest, YYYY-MM-DD or ID>); nothing was changed")
    restic_ops.member_files(
        name=f"{request.path} of {request.member} from snapshot {request.snapshot} into her ~/restored/",
        script=RESTORE_FILES_SCRIPT, backup_host=host.name, member=request.member, path=request.path, snapshot=request.snapshot,
    )
