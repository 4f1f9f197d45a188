"""Alerts without a host: the data refused before any host is contacted, and the state machine
(a message when a condition starts, no second one within remind_hours, a reminder after, one
"resolved" message) against a real SMTP server and a JSON webhook receiver on the loopback.
tests/test_alerts.py shows it all on test hosts, through the nightly unit."""

import pytest

from labhub import alerts
from labhub.drift import Finding, HostReport
from labhub.inventory import ConfigError, validate_host_data
from tests.harness.receivers import receivers

pytestmark = pytest.mark.quick

SENTINEL = "Sentinel-Share-Pw-77!"


def refused(data: dict, env: dict | None = None, monkeypatch=None) -> str:
    for name, value in (env or {}).items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as error:
        validate_host_data("hub1", data)
    return str(error.value)


def test_bad_alert_settings_are_refused_naming_the_field_and_never_the_url(monkeypatch):
    url = "mmost://mattermost.lab.test/Secret-Token-4711"
    said = refused({"alerts": {"enabled": True, "targets": [{"name": "chat", "url": url}]}})
    assert "alerts.targets[0].url: a notification URL holds passwords or tokens and never goes in host data" in said
    assert "LABHUB_ALERT_CHAT_URL" in said and "Secret-Token-4711" not in said
    said = refused({"alerts": {"enabled": True, "targets": [{"name": "chat"}]}}, {"LABHUB_ALERT_CHAT_URL": "gopher://x/Secret-Token-4711"}, monkeypatch)
    assert "alerts.targets[0].url = <hidden>: is not a URL of a service Apprise supports" in said and "Secret-Token-4711" not in said
    said = refused({"alerts": {"enabled": True, "targets": []}})
    assert "alerts.targets = [] (list): alerts are enabled but go nowhere" in said
    monkeypatch.delenv("LABHUB_ALERT_CHAT_URL")
    said = refused({"alerts": {"enabled": True, "targets": [{"name": "chat"}]}})
    assert "alerts.targets[0] 'chat': no URL to send to; set LABHUB_ALERT_CHAT_URL or [alerts.chat] url in the secrets file" in said
    said = refused({"alerts": {"heartbeats": {"backup": "https://hc.lab.test/ping/Secret-Token-4711"}}})
    assert "alerts.heartbeats.backup: a heartbeat URL holds its check's token" in said and "Secret-Token-4711" not in said


def report(name: str, *findings: Finding, errors: tuple[str, ...] = ()) -> HostReport:
    found = HostReport(name, drift=list(findings), errors=list(errors))
    found.settle()
    return found


def test_a_condition_is_sent_once_reminded_after_remind_hours_and_resolved_once(tmp_path):
    with receivers() as (smtp, http):
        settings = {"lab_name": "Optics Lab", "remind_hours": 24, "silence": [], "state": str(tmp_path / "state.json"),
                    "targets": [{"name": "mail", "min_severity": "warning", "url": smtp.url()},
                                {"name": "chat", "min_severity": "critical", "url": f"json://127.0.0.1:{http.port}/hook"}],
                    "heartbeat": {}}
        drifted = {"hub1": report("hub1", Finding("check", "group docker (root-equivalent)", "expected members ['labadmin'], found ['labadmin', 'mallory']",
                                                  "test_users::test_docker_group_is_exactly_the_admins"))}
        night = 1_800_000_000
        log = alerts.raise_alerts(settings, alerts.conditions(drifted), "/var/lib/labhub/drift/x/drift.md", now=night)
        assert log == ["alert hub1:drift (new) to mail: delivered"], log  # a warning: not for the chat, which wants critical
        mail = smtp.wait_for(1)[0]
        assert mail.subject == "[Optics Lab] hub1: drift (warning)" and mail.recipients == ["labadmin@lab.test"]
        assert "Optics Lab: hub1: drifted: group docker (root-equivalent): expected members ['labadmin'], found ['labadmin', 'mallory']" in mail.body
        assert "/var/lib/labhub/drift/x/drift.md" in mail.body and "Since: 2027-01-15 08:00 UTC" in mail.body

        assert alerts.raise_alerts(settings, alerts.conditions(drifted), now=night + 23 * 3600) == []
        assert alerts.raise_alerts(settings, alerts.conditions(drifted), now=night + 24 * 3600) == ["alert hub1:drift (reminder) to mail: delivered"]
        assert smtp.wait_for(2)[1].subject == "[Optics Lab] still: hub1: drift (warning)"

        down = {"hub1": report("hub1", errors=("deploy plan: ssh: connect to host refused",))}
        log = alerts.raise_alerts(settings, alerts.conditions(down), now=night + 25 * 3600)
        assert sorted(log) == ["alert hub1:drift (resolved) to mail: delivered", "alert hub1:unreachable (new) to chat: delivered",
                               "alert hub1:unreachable (new) to mail: delivered"]
        assert http.json_bodies("/hook")[0]["title"] == "[Optics Lab] hub1: unreachable (critical)"
        assert sorted(m.subject for m in smtp.wait_for(4)[2:]) == ["[Optics Lab] RESOLVED: hub1: drift (warning)", "[Optics Lab] hub1: unreachable (critical)"]


def test_an_undelivered_alert_is_logged_without_the_url_and_sent_at_the_next_run(tmp_path):
    with receivers(login=("alerts", SENTINEL)) as (smtp, _):
        settings = {"lab_name": "Optics Lab", "remind_hours": 24, "silence": [], "state": str(tmp_path / "state.json"),
                    "targets": [{"name": "mail", "min_severity": "info", "url": smtp.url()}], "heartbeat": {}}
        smtp.stop()
        found = alerts.conditions({"hub1": report("hub1", Finding("plan", "Docker engine | daemon.json", "the deploy would change this"))})
        log = alerts.raise_alerts(settings, found, now=1)
        assert len(log) == 1 and log[0].startswith("alert hub1:drift (new) to mail: NOT delivered (E-Mail: ") and "tried again at the next run" in log[0]
        assert SENTINEL not in log[0] and str(smtp.port) not in log[0], log
        smtp.start()
        assert alerts.raise_alerts(settings, found, now=2) == ["alert hub1:drift (new) to mail: delivered"]
