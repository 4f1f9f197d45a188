"""systemd: a unit enabled and running, restarted only when something it reads changed; a
service with its timer."""

from __future__ import annotations

from collections.abc import Sequence

from pyinfra.api import FactBase, operation

from labhub.ops import facts, files, server
from labhub.ops.shell import changed, q, script

UNITS = "/etc/systemd/system"


class ServiceState(FactBase):
    def command(self, unit: str) -> str:
        return (
            f"printf '%s\\n' \"$(systemctl is-enabled {q(unit)} 2>/dev/null)\" "
            f"\"$(systemctl is-active {q(unit)} 2>/dev/null)\""
        )

    def process(self, output):
        lines = [line.strip() for line in output] + ["", ""]
        return {"enabled": lines[0], "active": lines[1]}


@operation()
def service(unit: str, running: bool = True, enabled: bool = True, restart_when: Sequence = ()):
    """A systemd unit enabled and running; restarted only when a trigger operation changed."""
    now = facts.get(ServiceState, unit=unit)
    if enabled and now["enabled"] != "enabled":
        yield f"systemctl enable {q(unit)}"
    # "activating" (e.g. dockerd just after boot) is on its way to running: starting it
    # would change nothing, but a restart may still be due.
    started = now["active"] in ("active", "activating", "reloading")
    action = "restart" if started and changed(restart_when) else None if started else "start"
    if running and action:
        # A deliberate (re)start clears systemd's start rate limit, which a few converges in
        # a minute would otherwise hit; on failure the unit's status says why.
        yield script(
            [
                f"systemctl reset-failed {q(unit)} 2>/dev/null || true",
                f"if ! systemctl {action} {q(unit)}; then systemctl status --no-pager --lines 20 {q(unit)} >&2; exit 1; fi",
            ]
        )


def timer(unit: str, service_text: str, timer_text: str, what: str = "Service and timer", extra_files: Sequence = ()):
    """`unit`.service and `unit`.timer in /etc/systemd/system (with `extra_files`, e.g. the
    script it runs, from the same fact); systemd reloaded when they changed, and the timer
    enabled and waiting (restarted when they changed). Returns the files' operation."""
    units = files.managed(
        name=what,
        files=[*extra_files, files.ManagedFile(f"{UNITS}/{unit}.service", service_text), files.ManagedFile(f"{UNITS}/{unit}.timer", timer_text)],
    )
    server.run_when_changed(name="systemd reloaded", command="systemctl daemon-reload", triggers=[units])
    service(name="Timer enabled and waiting", unit=f"{unit}.timer", restart_when=[units])
    return units


@operation()
def run_now(unit: str, when: Sequence):
    """A oneshot service run now, when one of the `when` operations changed; on failure, its
    last journal lines."""
    if changed(when):
        yield f"systemctl start {q(unit)} || {{ journalctl -u {q(unit)} -n 40 --no-pager -o cat >&2; exit 1; }}"
