"""Where share credentials, the backup repository's secrets, the directory's bind password and
the alerts' URLs come from: never from host data (which lives in git), but from

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

       [alerts.mail]                   # an alert target's notification URL (Apprise's syntax)
       url = "mailtos://..."

       [alerts.heartbeat]              # the nightly jobs' heartbeat URLs
       backup = "https://hc-ping.com/.../labhub-backup-{host}"

   (`LABHUB_ALERT_<TARGET>_URL` and `LABHUB_HEARTBEAT_<JOB>_URL` in the environment.)
"""

from __future__ import annotations

import os
import stat
import tomllib
from pathlib import Path
from typing import Any

from labhub.config.alerts import HEARTBEAT_JOBS


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


def alert_env_name(target: str) -> str:
    return f"LABHUB_ALERT_{target.upper().replace('-', '_')}_URL"


def heartbeat_env_name(job: str) -> str:
    return f"LABHUB_HEARTBEAT_{job.upper()}_URL"


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

    def alert_url(self, target: str) -> str | None:
        """An alert target's notification URL, from the environment or the file."""
        from_file = self._from_file().get("alerts", {}).get(target, {})
        return os.environ.get(alert_env_name(target), from_file.get("url") if isinstance(from_file, dict) else None)

    def heartbeats(self) -> dict[str, str]:
        """The nightly jobs' heartbeat URLs, each from the environment or the file."""
        from_file = self._from_file().get("alerts", {}).get("heartbeat", {})
        found = {}
        for job in HEARTBEAT_JOBS:
            value = os.environ.get(heartbeat_env_name(job), from_file.get(job) if isinstance(from_file, dict) else None)
            if value is not None:
                found[job] = value
        return found

    def where(self, name: str) -> str:
        """How to provide a share's credentials, for error messages."""
        file = f" or [shares.{name}] in {self.path}" if self.path else ""
        return f"set {env_name(name, 'username')} and {env_name(name, 'password')}{file}"


def with_share_credentials(data: dict[str, Any], secrets: Secrets) -> tuple[dict[str, Any], list[str]]:
    """Host data with each share's credentials added from the secrets (never from data). A
    secrets file that cannot be used is one problem, not one per share."""
    shares, problems = data.get("shares"), []
    if not isinstance(shares, list):
        return data, problems
    try:
        secrets.load()
    except SecretsError as error:
        return data, [str(error)]
    with_credentials = []
    for index, share in enumerate(shares):
        if isinstance(share, dict) and isinstance(share.get("name"), str):
            name = share["name"]
            if "credentials" in share:
                problems.append(f"shares[{index}].credentials: share credentials never go in host data (it is kept in git); {secrets.where(name)}")
            else:
                credentials = secrets.share(name)
                if len(credentials) == 2:
                    share = {**share, "credentials": credentials}
                else:
                    problems.append(f"shares[{index}] '{name}': no username and password for the file server; {secrets.where(name)}")
        with_credentials.append(share)
    return {**data, "shares": with_credentials}, problems


def with_backup_credentials(data: dict[str, Any], secrets: Secrets) -> tuple[dict[str, Any], list[str]]:
    """Host data with the backup repository's password added from the secrets, when the host
    backs up or restores."""
    backup = data.get("backup")
    if not isinstance(backup, dict) or not (backup.get("enabled") or data.get("restore")):
        return data, []
    if "credentials" in backup:
        return data, ["backup.credentials: the repository password never goes in host data (it is kept in git); set LABHUB_BACKUP_PASSWORD or [backup] password in the secrets file"]
    try:
        credentials = secrets.backup()
    except SecretsError as error:
        return data, [str(error)]
    return ({**data, "backup": {**backup, "credentials": credentials}} if "password" in credentials else data), []


def with_ldap_credentials(data: dict[str, Any], secrets: Secrets) -> tuple[dict[str, Any], list[str]]:
    """Host data with the directory's service account password added from the secrets, when
    the hub searches the directory with it."""
    hub = data.get("hub")
    ldap = hub.get("ldap") if isinstance(hub, dict) else None
    if not isinstance(ldap, dict):
        return data, []
    if "credentials" in ldap:
        return data, ["hub.ldap.credentials: the bind password never goes in host data (it is kept in git); set LABHUB_LDAP_BIND_PASSWORD or [ldap] bind_password in the secrets file"]
    if not ldap.get("search_bind_dn"):
        return data, []
    try:
        credentials = secrets.ldap()
    except SecretsError as error:
        return data, [str(error)]
    return ({**data, "hub": {**hub, "ldap": {**ldap, "credentials": credentials}}} if credentials else data), []


def with_alert_urls(data: dict[str, Any], secrets: Secrets) -> tuple[dict[str, Any], list[str]]:
    """Host data with each alert target's URL and the heartbeat URLs added from the secrets.
    A URL written in data is refused, and never shown."""
    alerts = data.get("alerts")
    if not isinstance(alerts, dict):
        return data, []
    problems, targets = [], []
    for index, target in enumerate(alerts.get("targets") or []):
        if isinstance(target, dict) and isinstance(target.get("name"), str):
            name = target["name"]
            where = f"set {alert_env_name(name)} or [alerts.{name}] url in the secrets file"
            if "url" in target:
                problems.append(f"alerts.targets[{index}].url: a notification URL holds passwords or tokens and never goes in host data "
                                f"(it is kept in git; not shown); {where}")
                target = {key: value for key, value in target.items() if key != "url"}
            else:
                try:
                    url = secrets.alert_url(name)
                except SecretsError as error:
                    return data, [str(error)]
                if url is not None:
                    target = {**target, "url": url}
                elif alerts.get("enabled"):
                    problems.append(f"alerts.targets[{index}] '{name}': no URL to send to; {where}")
        targets.append(target)
    heartbeats = alerts.get("heartbeats") if isinstance(alerts.get("heartbeats"), dict) else {}
    written = sorted(set(heartbeats) & set(HEARTBEAT_JOBS))
    if written:
        problems.append(f"alerts.heartbeats.{written[0]}: a heartbeat URL holds its check's token and never goes in host data "
                        f"(not shown); set {heartbeat_env_name(written[0])} or [alerts.heartbeat] {written[0]} in the secrets file")
    try:
        heartbeats = {**heartbeats, **secrets.heartbeats()}
    except SecretsError as error:
        return data, [str(error)]
    return {**data, "alerts": {**alerts, "targets": targets, **({"heartbeats": heartbeats} if heartbeats else {})}}, problems


def with_secrets(data: dict[str, Any], secrets: Secrets) -> tuple[dict[str, Any], list[str]]:
    """Host data with every secret it needs added from the environment or the secrets file,
    and the problems found (a secret written in data, one that is missing)."""
    problems = []
    for add in (with_share_credentials, with_backup_credentials, with_ldap_credentials, with_alert_urls):
        data, found = add(data, secrets)
        problems += found
    return data, problems
