"""Alerts from the nightly drift check: what it found becomes conditions (a host, a kind, what
is wrong), and each condition is a message when it starts, a reminder at most every
`remind_hours` while it lasts, and one "resolved" message when it ends. The state lives in a
file on the control host, so it survives reboots and re-deploys; a message that could not be
delivered is tried again at the next run and never fails the check.

The settings come from the control host's validated config: `settings(config)` is what the
deploy writes to a root-only file there (URLs included) and what `--alerts FILE` reads.
Messages carry what the drift report says (never a secret) and where to read more.
"""

from __future__ import annotations

import datetime
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from labhub.config.alerts import CONDITION_KINDS, SEVERITIES
from labhub.notify import deliver, ping

STATE_FILE = "/var/lib/labhub/alerts/state.json"
MAX_FINDINGS = 8  # a drift message lists this many findings, then "and N more"
README = "README, section \"Alerts\""
# The host checks whose failures are their own kind of alert (the rest is drift).
CHECK_KINDS = {
    "test_backup::": "backup",
    "test_hub::test_the_registrys_last_retention_run_succeeded": "registry",
    "test_hub::test_https_serves_a_certificate": "certificate",
    "test_space::": "disk",
}


def settings(config) -> dict:
    """What the control host's drift check needs to send alerts, from its validated config.
    Holds the targets' URLs: written only to a root-only file."""
    alerts = config.alerts
    return {
        "lab_name": alerts.lab_name,
        "remind_hours": alerts.remind_hours,
        "silence": alerts.silence,
        "state": STATE_FILE,
        "targets": [{"name": t.name, "min_severity": t.min_severity, "url": t.url.get_secret_value()} for t in alerts.targets if t.url],
        "heartbeat": {"style": alerts.heartbeats.style, "url": alerts.heartbeats.drift.get_secret_value() if alerts.heartbeats.drift else None},
    }


@dataclass(frozen=True)
class Condition:
    host: str
    kind: str
    lines: tuple[str, ...]  # what is wrong, as the drift report says it

    @property
    def key(self) -> str:
        return f"{self.host}:{self.kind}"

    @property
    def severity(self) -> str:
        return CONDITION_KINDS[self.kind]


def kind_of(check: str) -> str:
    return next((kind for prefix, kind in CHECK_KINDS.items() if check.startswith(prefix)), "drift")


def _host_name(inventory_name: str) -> str:
    """The name an alert gives a host: a server that checks itself (@local) by its own name."""
    return os.uname().nodename if inventory_name.startswith("@local") else inventory_name


def conditions(reports: dict, converge_failed: list[str] = ()) -> list[Condition]:
    """Every condition the drift check's reports show, grouped per host and kind."""
    found: dict[tuple[str, str], list[str]] = {}
    for inventory_name, report in reports.items():
        name = _host_name(inventory_name)
        for error in report.errors:
            found.setdefault((name, "unreachable"), []).append(f"could not be checked: {error}")
        # What the host checks found (expected vs found) first, then what the deploy would change.
        for finding in sorted(report.drift, key=lambda finding: finding.source != "check"):
            if finding.source == "check":
                found.setdefault((name, kind_of(finding.check)), []).append(f"drifted: {finding.resource}: {finding.detail}")
            else:
                found.setdefault((name, "drift"), []).append(f"the deploy would change: {finding.resource}")
    for inventory_name in converge_failed:
        found.setdefault((_host_name(inventory_name), "converge"), []).append("the nightly re-deploy of this drifted host failed (journalctl -u labhub-drift)")
    return [Condition(host, kind, tuple(lines)) for (host, kind), lines in sorted(found.items())]


def _when(timestamp: float) -> str:
    return datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def message(lab: str, condition: Condition, since: float, state: str, report: str | None) -> tuple[str, str]:
    """(title, body) of one alert: the lab, the host, what is wrong, since when, where to read more."""
    verb = {"new": "", "reminder": "still: ", "resolved": "RESOLVED: "}[state]
    first = condition.lines[0] if condition.lines else condition.kind
    title = f"[{lab}] {verb}{condition.host}: {condition.kind} ({condition.severity})"
    if state == "resolved":
        return title, f"{lab}: {condition.host}: {condition.kind} is resolved (it began {_when(since)}).\n"
    shown = list(condition.lines[:MAX_FINDINGS])
    if len(condition.lines) > MAX_FINDINGS:
        shown.append(f"... and {len(condition.lines) - MAX_FINDINGS} more")
    more = f"the report {report} on {os.uname().nodename}; " if report else ""
    body = (
        f"{lab}: {condition.host}: {first}\n"
        + "".join(f"  - {line}\n" for line in shown[1:])
        + f"Since: {_when(since)}\n"
        + f"Read more: {more}labhub's {README}.\n"
    )
    return title, body


def _load(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _save(path: Path, state: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    staged = path.with_suffix(".new")
    staged.write_text(json.dumps(state, indent=1, sort_keys=True) + "\n")
    staged.replace(path)


def raise_alerts(config: dict, found: list[Condition], report: str | None = None, now: float | None = None) -> list[str]:
    """Send what is due, update the state, and return what happened, a line each (for the
    journal): which condition went to which target (by name and service), or why not."""
    now = time.time() if now is None else now
    path = Path(config["state"])
    state = _load(path)
    log: list[str] = []
    current = {condition.key: condition for condition in found if condition.key not in config["silence"]}
    remind = config["remind_hours"] * 3600

    def send(condition: Condition, entry: dict, kind: str, targets: list[dict]) -> None:
        title, body = message(config["lab_name"], condition, entry["since"], kind, report)
        for target, delivered, reason in deliver(targets, title, body):
            if delivered:
                entry["sent"][target["name"]] = now
            log.append(f"alert {condition.key} ({kind}) to {target['name']}: {'delivered' if delivered else f'NOT delivered ({reason}); tried again at the next run'}")

    for key, condition in current.items():
        entry = state.setdefault(key, {"since": now, "sent": {}, "lines": []})
        entry["lines"] = list(condition.lines)
        wanted = [t for t in config["targets"] if SEVERITIES.index(condition.severity) >= SEVERITIES.index(t["min_severity"])]
        due_new = [t for t in wanted if t["name"] not in entry["sent"]]
        due_reminder = [t for t in wanted if t["name"] in entry["sent"] and now - entry["sent"][t["name"]] >= remind]
        if due_new:
            send(condition, entry, "new", due_new)
        if due_reminder:
            send(condition, entry, "reminder", due_reminder)
    for key in [key for key in state if key not in current]:
        entry = state[key]
        host, _, kind = key.rpartition(":")
        condition = Condition(host, kind, tuple(entry.get("lines", ())))
        told = [t for t in config["targets"] if t["name"] in entry["sent"]]
        before = dict(entry["sent"])
        send(condition, entry, "resolved", told)
        undelivered = {name for name, at in entry["sent"].items() if before.get(name) == at}
        if undelivered:
            entry["sent"] = {name: before[name] for name in undelivered}  # tell them next run
        else:
            del state[key]
    _save(path, state)
    return log


def load_settings(path: str | None, inventory: str) -> dict | None:
    """The settings from the control host's file; without one (a sysadmin's machine), from the
    inventory: the control host's data (drift.enabled), else the first host with targets."""
    if path:
        return json.loads(Path(path).read_text())
    from labhub.inventory import load_inventory, validate_host_data

    configs = [validate_host_data(name, data, inventory) for name, data in load_inventory(inventory)]
    chosen = next((c for c in configs if c.drift.enabled), None) or next((c for c in configs if c.alerts.targets), None)
    return settings(chosen) if chosen else None


def test(config: dict | None) -> int:
    """Send one test message through every target; say, for each, whether it was delivered."""
    if not config or not config["targets"]:
        print("no alert targets: set alerts.targets in data and each one's URL in the secrets file")
        return 1
    title = f"[{config['lab_name']}] a test message from labhub"
    body = f"{config['lab_name']}: this is a test of the lab's alerts, sent by ./drift-check --test-alerts from {os.uname().nodename}.\n"
    failed = 0
    for target, delivered, reason in deliver(config["targets"], title, body):
        failed += not delivered
        print(f"{target['name']} ({target['service']}): {'delivered' if delivered else f'NOT delivered: {reason}'}")
    return 1 if failed else 0


def ping_job(config: dict | None, event: str) -> str:
    """The drift check's own heartbeat: one line saying what happened ('' when none is set)."""
    heartbeat = (config or {}).get("heartbeat") or {}
    said = ping(heartbeat.get("url"), heartbeat.get("style", "healthchecks"), event)
    return f"{said}\n" if said else ""
