"""The nightly drift check on a control host."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import Field, field_validator

from labhub.local import local_path

from labhub.config.common import Model, check_calendar, check_own_path


class DriftSchedule(Model):
    """The nightly drift check, installed on this host when enabled: this host is then the
    control host that checks the inventory's hosts (itself included, via '@local')."""

    enabled: bool = Field(False, description="install the nightly check here (a systemd service and timer)")
    inventory: str = Field(
        "inventories/lab.py", description="inventory the nightly check reads: a file on this machine, copied with the project"
    )
    checkout: str = Field("/opt/labhub", description="where the project is installed on the control host")
    on_calendar: str = Field("*-*-* 03:30:00", description="when it runs (systemd OnCalendar; missed runs are caught up at boot)")
    report_dir: str = Field("/var/lib/labhub/drift", description="where each run's reports (JSON, JUnit XML, Markdown) are kept")
    keep_days: int = Field(30, description="reports older than this many days are removed (before each run)")
    converge: bool = Field(False, description="re-run the deploy on drifted hosts after reporting (off: report only)")

    _paths = field_validator("checkout", "report_dir")(check_own_path)

    @field_validator("inventory")
    @classmethod
    def _inventory(cls, path: str) -> str:
        if not local_path(path).is_file() or not re.fullmatch(r"[A-Za-z0-9._-]+\.py", Path(path).name):
            raise ValueError(f"'{path}' is not an inventory file on this machine named of letters, digits, '.', '_', '-' and ending in .py")
        return path

    _on_calendar = field_validator("on_calendar")(check_calendar)

    @field_validator("keep_days")
    @classmethod
    def _days(cls, days: int) -> int:
        if days < 1:
            raise ValueError("must be at least 1")
        return days
