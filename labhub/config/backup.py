"""Backups with restic, and where a restore reads from."""

from __future__ import annotations

import re

from pydantic import Field, SecretStr, field_validator, model_validator

from labhub.config.common import Model, check_calendar, check_one_line_secret


# Backups (tasks/backup.py): restic, which Debian and Ubuntu package. Its repository password
# and any S3 keys live in this root-only directory on the host, never in a unit file.
BACKUP_SECRETS_DIR = "/etc/labhub/backup"
# A restic repository: a local path (e.g. on a mounted share of the file server), or
# sftp:user@host:/path, or s3:https://host/bucket/path (restic's own spellings).
BACKUP_REPOSITORY = re.compile(r"/[A-Za-z0-9._/-]+|sftp:[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:/[A-Za-z0-9._/-]+|s3:https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?/[A-Za-z0-9._/-]+")
RESTIC_SNAPSHOT_ID = re.compile(r"[0-9a-f]{8,64}")


class BackupCredentials(Model):
    """The repository's secrets. Never from host data: see labhub/secrets.py."""

    password: SecretStr = Field(description="the restic repository password (encrypts the backups)")
    aws_access_key_id: SecretStr | None = Field(None, description="S3 repositories: the access key")
    aws_secret_access_key: SecretStr | None = Field(None, description="S3 repositories: the secret key")

    _password = field_validator("password")(check_one_line_secret)

    @field_validator("aws_access_key_id", "aws_secret_access_key")
    @classmethod
    def _key(cls, secret: SecretStr | None) -> SecretStr | None:
        # They are quoted in an env file that both systemd and the shell read.
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9/+=._-]+", secret.get_secret_value()):
            raise ValueError("an S3 key must be letters, digits and / + = . _ - (not shown)")
        return secret


class Backup(Model):
    """Nightly encrypted, deduplicated backups with restic: the jupyter-* homes, the hub's state
    (its database, the authenticator's passwords and the generated secrets) and, optionally,
    the registry's images. The same settings tell a fresh host where to restore from."""

    enabled: bool = Field(False, description="back this host up on a schedule (a systemd timer, output in the journal)")
    repository: str | None = Field(
        None,
        description="restic repository: a local path (e.g. '/mnt/backup/labhub', on a mounted share), "
        "'sftp:user@host:/path' (root's SSH key and known_hosts on the host reach it) or 's3:https://host/bucket/path'",
    )
    on_calendar: str = Field("*-*-* 02:30:00", description="when it runs (systemd OnCalendar; a missed run is caught up at boot)")
    keep_daily: int = Field(7, description="daily snapshots kept (restic forget --keep-daily)")
    keep_weekly: int = Field(4, description="weekly snapshots kept")
    keep_monthly: int = Field(6, description="monthly snapshots kept")
    registry: bool = Field(False, description="also back up the registry's images (they can be rebuilt from files/images)")
    max_age_hours: int = Field(36, description="the drift check reports the backup when its last success is older than this")
    credentials: BackupCredentials | None = Field(
        None, description="never from host data: LABHUB_BACKUP_PASSWORD (and _AWS_ACCESS_KEY_ID, _AWS_SECRET_ACCESS_KEY) or [backup] in the inventory's secrets file"
    )

    _on_calendar = field_validator("on_calendar")(check_calendar)

    @field_validator("repository")
    @classmethod
    def _repository(cls, repository: str | None) -> str | None:
        if repository is not None and (not BACKUP_REPOSITORY.fullmatch(repository) or ".." in repository.split("/")):
            raise ValueError("must be a plain absolute path ('/mnt/backup/labhub'), 'sftp:user@host:/path' or 's3:https://host/bucket/path'")
        return repository

    @field_validator("keep_daily", "keep_weekly", "keep_monthly")
    @classmethod
    def _keep(cls, count: int) -> int:
        if not 0 <= count <= 1000:
            raise ValueError("must be 0-1000 snapshots")
        return count

    @field_validator("max_age_hours")
    @classmethod
    def _age(cls, hours: int) -> int:
        if hours < 1:
            raise ValueError("must be at least 1 hour")
        return hours

    @model_validator(mode="after")
    def _keeps_something(self) -> Backup:
        if self.enabled and not (self.keep_daily or self.keep_weekly or self.keep_monthly):
            raise ValueError("keep_daily, keep_weekly and keep_monthly are all 0: every snapshot would be forgotten")
        return self

    @property
    def is_s3(self) -> bool:
        return bool(self.repository and self.repository.startswith("s3:"))


SNAPSHOT_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class RestoreFiles(Model):
    """One file or folder of a member's home back from a snapshot, into her ~/restored/<date>/
    (restore-files.py; on the command line: --data member=alice --data path=... --data snapshot=...)."""

    member: str = Field(description="the member (hub user name) whose file or folder comes back")
    path: str = Field(description="the file or folder, relative to her home, e.g. notebooks/thesis.ipynb")
    snapshot: str = Field("latest", description="'latest', a date (YYYY-MM-DD: that day's last snapshot) or a snapshot ID")

    @field_validator("path", mode="before")
    @classmethod
    def _path(cls, path: object) -> object:
        if not isinstance(path, str):
            return path
        if not path or path.startswith(("/", "~")):
            raise ValueError(f"must be a path inside her home, relative to it (e.g. notebooks/thesis.ipynb), not {path!r}")
        if any(part in ("..", ".", "") for part in path.rstrip("/").split("/")) or any(ord(c) < 32 for c in path):
            raise ValueError(f"must be a plain path inside her home, without '..', '.', '//' or control characters, not {path!r}")
        return path.rstrip("/")

    @field_validator("snapshot", mode="before")
    @classmethod
    def _snapshot(cls, spec: object) -> object:
        spec = f"{spec:08d}" if isinstance(spec, int) and not isinstance(spec, bool) else spec  # pyinfra reads digits as a number
        if spec != "latest" and not (SNAPSHOT_DATE.fullmatch(str(spec)) or RESTIC_SNAPSHOT_ID.fullmatch(str(spec))):
            raise ValueError("must be 'latest', a date such as 2026-11-30, or a restic snapshot ID (as `restic snapshots` shows)")
        return spec
