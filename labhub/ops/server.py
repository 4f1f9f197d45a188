"""The server itself: which OS it runs, and commands run only when something changed."""

from __future__ import annotations

from collections.abc import Sequence

from pyinfra.api import FactBase, operation

from labhub.ops.shell import changed


class OsRelease(FactBase):
    """ID, VERSION_ID and codename from /etc/os-release, and the dpkg architecture."""

    def command(self) -> str:
        return (
            ". /etc/os-release; printf '%s\\n' \"$ID\" \"$VERSION_ID\" \"${VERSION_CODENAME:-}\"; "
            "dpkg --print-architecture 2>/dev/null || uname -m"
        )

    def process(self, output):
        keys = ("id", "version_id", "codename", "arch")
        return dict(zip(keys, [line.strip() for line in output] + [""] * 4))


@operation()
def run_when_changed(command: str, triggers: Sequence):
    """Run `command` only when one of the trigger operations changed something."""
    if changed(triggers):
        yield command
