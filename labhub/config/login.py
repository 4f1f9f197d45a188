"""The hub's login page and its guard against strangers: whose lab it is, what a member does
at her first login and whom she asks, and how many failed logins are tolerated."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from labhub.config.common import ONE_LINE, Model
from labhub.config.tls import EMAIL


class Login(Model):
    """What the login page says and how it throttles guessing (every authenticator)."""

    lab_name: str | None = Field(None, description="the lab's name, shown on the login page, e.g. 'Optics Lab'; none: not shown")
    text: str | None = Field(
        None, description="a short text under it: how the first login works, whom to ask (plain text, one paragraph)"
    )
    contact_email: str | None = Field(None, description="the address members write to about their account, shown on the login page")
    first_login: Literal["setup-code", "open"] = Field(
        "setup-code",
        description="'setup-code': a member's first login (firstuse) needs the one-time code a sysadmin issued for her, and a native "
        "sign-up waits for a person's approval, so nobody who merely knows her name can claim her account; 'open': the first "
        "login that names a member sets her password (a hub nobody else can reach); ldap needs neither",
    )
    setup_code_days: int = Field(14, description="days a setup code works; a member who missed it asks for a new one")
    failed_limit: int = Field(
        5, description="failed logins for one name, or from one address, within failed_window; the next ones get HTTP 429 until it has passed"
    )
    failed_window: int = Field(300, description="seconds over which failed logins are counted (and a throttled name or address waits at most)")
    alert_failures: int = Field(
        50, description="failed logins within 24 h that the host checks report (and so the nightly drift check and its alerts), naming whom and from where"
    )

    @field_validator("lab_name", "text")
    @classmethod
    def _one_paragraph(cls, value: str | None) -> str | None:
        if value is not None and (not ONE_LINE.fullmatch(value) or len(value) > 600):
            raise ValueError("must be one paragraph of at most 600 characters, no line breaks")
        return value

    @field_validator("contact_email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(EMAIL, value):
            raise ValueError(f"{value!r} is not an e-mail address, e.g. 'hub-admins@lab.example.org'")
        return value

    @field_validator("failed_limit", "failed_window", "alert_failures", "setup_code_days")
    @classmethod
    def _positive(cls, value: int) -> int:
        if value < 1:
            raise ValueError("must be at least 1")
        return value
