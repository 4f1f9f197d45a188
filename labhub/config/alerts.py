"""Alerts: where the nightly drift check tells a person that the lab needs attention, and the
heartbeats that make a job that stopped running noticed from outside."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator

from labhub.config.common import ONE_LINE, Model

SEVERITIES = ("info", "warning", "critical")
ALERT_TARGET_NAME = re.compile(r"[a-z][a-z0-9-]{0,31}")
HEARTBEAT_JOBS = ("drift", "backup", "registry")  # the nightly jobs: the drift check, the backup, the registry's retention


def apprise_service(url: str) -> str | None:
    """The name of the service an Apprise URL is for ('E-Mail', 'Mattermost', ...), read
    offline; None when Apprise supports no such URL. Apprise's own log lines, which may
    quote the URL, are kept quiet."""
    import logging

    import apprise

    quiet = logging.getLogger("apprise")
    was = quiet.disabled
    quiet.disabled = True
    try:
        plugin = apprise.Apprise.instantiate(url)
    except Exception:  # noqa: BLE001 - whatever a malformed URL raises is "not supported"
        plugin = None
    finally:
        quiet.disabled = was
    return str(plugin.service_name) if plugin is not None else None


class AlertTarget(Model):
    """Where alerts go: one notification URL in Apprise's syntax. The URL holds passwords or
    tokens, so it never comes from data: LABHUB_ALERT_<NAME>_URL, or [alerts.<name>] url in
    the inventory's secrets file."""

    name: str = Field(description="names the target and its secret (letters, digits, '-')")
    min_severity: Literal["info", "warning", "critical"] = Field("warning", description="the least severe alert sent here")
    url: SecretStr | None = Field(None, description="never from host data: from the environment or the secrets file")

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if not ALERT_TARGET_NAME.fullmatch(name):
            raise ValueError("must be lower-case letters, digits and '-', starting with a letter, at most 32 characters")
        return name

    @field_validator("url")
    @classmethod
    def _supported(cls, url: SecretStr | None) -> SecretStr | None:
        if url is not None and apprise_service(url.get_secret_value()) is None:
            raise ValueError("is not a URL of a service Apprise supports (mailtos://, mmost://, matrix://, slack://, ntfy://, json://, ...; not shown)")
        return url


class Heartbeats(Model):
    """Dead man's switches: each nightly job pings a URL as it starts, and when it ends (success
    or failure), so that a job that stops running is noticed outside the lab. The URLs are
    secrets: LABHUB_HEARTBEAT_<JOB>_URL or [alerts.heartbeat] <job> in the secrets file;
    '{host}' in one becomes the server's inventory name (one check per server)."""

    style: Literal["healthchecks", "uptime-kuma"] = Field(
        "healthchecks", description="healthchecks: <url>/start, <url>, <url>/fail; uptime-kuma: <url>?status=up|down&msg=..."
    )
    drift: SecretStr | None = Field(None, description="the drift check's heartbeat URL (on the control host)")
    backup: SecretStr | None = Field(None, description="each server's backup's heartbeat URL")
    registry: SecretStr | None = Field(None, description="each hub's registry retention's heartbeat URL")

    @field_validator("drift", "backup", "registry")
    @classmethod
    def _url(cls, url: SecretStr | None) -> SecretStr | None:
        if url is not None and not re.fullmatch(r"https?://[^\s\"'\\`$]+", url.get_secret_value()):
            raise ValueError("must be an http:// or https:// URL without spaces or quotes (not shown)")
        return url


class Alerts(Model):
    """The nightly drift check (on the control host) sends a message when a condition starts,
    a reminder while it lasts, and one when it ends: a host drifted or could not be checked,
    a backup failed or is too old, the registry's retention failed, the certificate ends
    soon, a filesystem is nearly full, a nightly re-deploy failed."""

    enabled: bool = Field(False, description="send alerts (from the control host's nightly drift check)")
    lab_name: str = Field("labhub", description="the lab's name, first in every message")
    targets: list[AlertTarget] = Field(default_factory=list, description="where alerts go, each with its least severity")
    remind_hours: int = Field(24, description="while a condition lasts, a reminder at most this often")
    disk_percent: int = Field(85, description="a filesystem holding homes, Docker's data or the backup's staging fuller than this is reported")
    quota_percent: int = Field(95, description="a home or group folder using more of its quota than this is reported, with its use")
    silence: list[str] = Field(default_factory=list, description="known conditions not sent, as '<host>:<kind>' (kinds: drift, unreachable, backup, registry, certificate, disk, converge)")
    heartbeats: Heartbeats = Field(default_factory=Heartbeats, description="dead man's switch URLs of the nightly jobs")

    @field_validator("lab_name")
    @classmethod
    def _lab_name(cls, name: str) -> str:
        if not ONE_LINE.fullmatch(name) or len(name) > 80:
            raise ValueError("must be one line of at most 80 printable characters")
        return name

    @field_validator("remind_hours")
    @classmethod
    def _remind(cls, hours: int) -> int:
        if not 1 <= hours <= 24 * 30:
            raise ValueError("must be 1 to 720 hours")
        return hours

    @field_validator("disk_percent", "quota_percent")
    @classmethod
    def _percent(cls, percent: int) -> int:
        if not 1 <= percent <= 100:
            raise ValueError("must be 1-100 (percent)")
        return percent

    @field_validator("silence")
    @classmethod
    def _silence(cls, conditions: list[str]) -> list[str]:
        for condition in conditions:
            host, _, kind = condition.rpartition(":")
            if not host or kind not in CONDITION_KINDS:
                raise ValueError(f"'{condition}' is not '<host>:<kind>' with kind one of {', '.join(CONDITION_KINDS)}")
        return conditions

    @field_validator("targets")
    @classmethod
    def _targets(cls, targets: list[AlertTarget], info: ValidationInfo) -> list[AlertTarget]:
        names = [target.name for target in targets]
        if len(set(names)) != len(names):
            raise ValueError("each target needs its own name")
        if info.data.get("enabled") and not targets:
            raise ValueError("alerts are enabled but go nowhere: list at least one target, e.g. [{'name': 'mail'}] (its URL in the secrets file)")
        return targets


# What raises an alert, and how severe it is.
CONDITION_KINDS = {"unreachable": "critical", "backup": "critical", "converge": "critical", "drift": "warning",
                   "registry": "warning", "certificate": "warning", "disk": "warning"}
