"""Where share credentials and the backup repository's secrets come from: never from host
data (which lives in git), but from

1. environment variables `LABHUB_SHARE_<NAME>_USERNAME` and `LABHUB_SHARE_<NAME>_PASSWORD`
   (NAME upper-cased, '-' as '_'), and `LABHUB_BACKUP_PASSWORD` (with
   `LABHUB_BACKUP_AWS_ACCESS_KEY_ID` and `LABHUB_BACKUP_AWS_SECRET_ACCESS_KEY` for S3), which win; or
2. the secrets file next to the inventory, `<inventory>.secrets.toml` (for inventories/lab.py:
   inventories/lab.secrets.toml), git-ignored and readable by its owner only:

       [shares.analysis]
       username = "labuser"
       password = "..."

       [backup]
       password = "..."
"""

from __future__ import annotations

import os
import stat
import tomllib
from pathlib import Path


class SecretsError(Exception):
    """A secrets file that cannot be used; the message never contains a secret."""


def secrets_file(inventory: str | Path) -> Path:
    return Path(inventory).with_suffix(".secrets.toml")


def env_name(share: str, field: str) -> str:
    return f"LABHUB_SHARE_{share.upper().replace('-', '_')}_{field.upper()}"


BACKUP_FIELDS = ("password", "aws_access_key_id", "aws_secret_access_key")


def backup_env_name(field: str) -> str:
    return f"LABHUB_BACKUP_{field.upper()}"


LDAP_PASSWORD_ENV = "LABHUB_LDAP_BIND_PASSWORD"


class Secrets:
    def __init__(self, inventory: str | Path | None):
        self.path = secrets_file(inventory) if inventory else None
        self._file: dict | None = None

    def load(self) -> None:
        """Read the secrets file now: SecretsError when it is unusable (readable by others,
        not TOML); the message names the file and the fix, never a value."""
        self._from_file()

    def _from_file(self) -> dict:
        if self._file is None:
            found = {}
            if self.path and self.path.exists():
                mode = stat.S_IMODE(self.path.stat().st_mode)
                if mode & 0o077:
                    raise SecretsError(f"{self.path} is readable by others (mode {mode:04o}); run: chmod 600 {self.path}")
                try:
                    found = tomllib.loads(self.path.read_text())
                except tomllib.TOMLDecodeError as error:
                    # the decoder's message quotes no values, only positions
                    raise SecretsError(f"{self.path} is not valid TOML: {error}") from None
            self._file = found
        return self._file

    def share(self, name: str) -> dict[str, str]:
        """username/password for a share, each from the environment or the file ({} if none)."""
        from_file = self._from_file().get("shares", {}).get(name, {})
        found = {}
        for field in ("username", "password"):
            value = os.environ.get(env_name(name, field), from_file.get(field))
            if value is not None:
                found[field] = value
        return found

    def backup(self) -> dict[str, str]:
        """The backup repository's password (and S3 keys), each from the environment or the file."""
        from_file = self._from_file().get("backup", {})
        found = {}
        for field in BACKUP_FIELDS:
            value = os.environ.get(backup_env_name(field), from_file.get(field))
            if value is not None:
                found[field] = value
        return found

    def ldap(self) -> dict[str, str]:
        """The directory's service account password, from the environment or the file."""
        value = os.environ.get(LDAP_PASSWORD_ENV, self._from_file().get("ldap", {}).get("bind_password"))
        return {"bind_password": value} if value is not None else {}

    def where(self, name: str) -> str:
        """How to provide a share's credentials, for error messages."""
        file = f" or [shares.{name}] in {self.path}" if self.path else ""
        return f"set {env_name(name, 'username')} and {env_name(name, 'password')}{file}"
