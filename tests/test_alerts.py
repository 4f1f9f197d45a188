"""Alerts reach a person (issue 22), for real: a lab server that is its own control host
(its nightly drift check checks itself, over SSH as root) sends them through Apprise to a real SMTP
server and a JSON webhook that the test runs on the runner's address on the test hosts'
network, and its nightly jobs ping a Healthchecks-style heartbeat there. Each case starts the
units as their timers would. A share's sentinel password appears in no message and no log.
The certificate's and a failed backup's alerts are shown in test_tls.py and test_backup.py."""

from __future__ import annotations

import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.harness import cli
from tests.harness.hosts import TestHost, remove_host, start_host, write_inventory
from tests.harness.hublab import RUNNER_CA_DIRECTORY
from tests.harness.receivers import HttpReceiver, SmtpReceiver, runner_address

pytestmark = [pytest.mark.host, pytest.mark.alerts]

SENTINEL = "Alert-Sentinel-Share-Pw-93!"
SMTP_LOGIN = ("alerts", "Smtp-Relay-Pw-28?")
HOST = "alerthost"
NIGHTLY_KEY = "/root/.ssh/labhub-nightly"  # the control host's key, with which its nightly check reaches the servers (itself here)


@dataclass
class AlertLab:
    host: TestHost
    inventory: Path
    nightly: Path
    smtp: SmtpReceiver
    http: HttpReceiver
    data: dict = field(default_factory=dict)

    def sh(self, command: str, check: bool = True) -> str:
        return self.host.exec(command, check=check).stdout.strip()

    def write(self, **alerts) -> None:
        """The lab's data: the deploy's inventory and, copied to the control host, the one its
        nightly check reads: itself by the same name, over SSH with its own key (as a control
        host reaches the other servers), so that what depends on the name (the backup's
        snapshots, the heartbeats' {host}) is the same in both."""
        runner_cas = sorted(RUNNER_CA_DIRECTORY.glob("*.crt"))
        base = {"hub": {"enabled": False}, "docker": {"source": "distro"}, "admins": ["labadmin"], "users": ["alice", "bob"],
                "mount_shares": False, "shares": [{"name": "data", "server": "files.example.org", "share": "data", "mount_point": "/mnt/data"}],
                "backup": {"enabled": True, "repository": "/srv/backup/labhub"},
                "alerts": {"enabled": True, "lab_name": "Optics Lab", "targets": [{"name": "mail"}, {"name": "chat", "min_severity": "critical"}],
                           **alerts}}
        installed = [f"/usr/local/share/ca-certificates/labhub/{ca.stem}.crt" for ca in runner_cas]
        itself = {"ssh_hostname": "127.0.0.1", "ssh_user": "root", "ssh_key": NIGHTLY_KEY, "ssh_known_hosts_file": "/dev/null",
                  "ssh_strict_host_key_checking": "no"}
        nightly = {**itself, **base, "extra_ca_certificates": installed, "drift": {"enabled": True, "inventory": "inventories/nightly_hosts.py"}}
        self.nightly.write_text(f"nightly = [({HOST!r}, {nightly!r})]\n")
        self.data = {**base, "extra_ca_certificates": [str(ca) for ca in runner_cas],
                     "drift": {"enabled": True, "inventory": str(self.nightly)}}
        write_inventory(self.inventory, [(self.host, self.data)])
        secrets = self.inventory.with_suffix(".secrets.toml")
        secrets.write_text(f'[shares.data]\nusername = "labreader"\npassword = "{SENTINEL}"\n\n[backup]\npassword = "Alert-Restic-Pw-5"\n\n'
                           f'[alerts.mail]\nurl = "{self.smtp.url()}"\n\n[alerts.chat]\nurl = "json://{self.http.address}:{self.http.port}/chat"\n\n'
                           f'[alerts.heartbeat]\ndrift = "{self.http.url("/ping/drift")}"\nbackup = "{self.http.url("/ping/backup-{host}")}"\n')
        secrets.chmod(0o600)

    def converge(self, **alerts) -> list[str]:
        self.write(**alerts)
        run, results = cli.deploy(self.inventory)
        assert run.returncode == 0, run.explain()
        assert SENTINEL not in run.output and SMTP_LOGIN[1] not in run.output
        return cli.changed_operations(results).get(HOST, [])

    def night(self, unit: str = "labhub-drift") -> tuple[int, str]:
        """One run of the unit, as its timer starts it: its exit status and its journal lines."""
        cursor = self.sh("journalctl -n 0 --show-cursor --no-pager | sed -n 's/^-- cursor: //p'")
        started = self.host.exec(f"systemctl start {unit}.service", check=False).returncode
        # Its ExecStopPost (the heartbeat) may still run, and journald takes in what a unit
        # wrote a moment later: wait for both before reading.
        self.sh(f"while [ \"$(systemctl show -p ActiveState --value {unit}.service)\" = deactivating ]; do sleep 0.2; done; journalctl --sync")
        run = self.sh(f"systemctl show -p InvocationID --value {unit}.service")
        # This run's lines, and the heartbeat's by its name: journald tells a line's unit from
        # its process's cgroup, which a ping that fails in 0 ms may have left before journald
        # looks (a full run lost the backup's end line to that with 90 s to wait).
        read = f"journalctl --after-cursor={shlex.quote(cursor)} --no-pager -o cat _SYSTEMD_INVOCATION_ID={run} + SYSLOG_IDENTIFIER=labhub-heartbeat"
        journal = self.sh(read)
        # The backup pings at its start and at its end (ExecStopPost): under load journald
        # had the end's line only after the sync. The wait ends as soon as both lines are there.
        deadline = time.monotonic() + 90
        while unit == "labhub-backup" and journal.count("labhub-heartbeat: backup ") < 2 and time.monotonic() < deadline:
            time.sleep(0.5)
            journal = self.sh(read)
        return started, journal


@pytest.fixture(scope="module")
def alert_lab(tmp_path_factory, testhost_image, ssh_key):
    workdir = tmp_path_factory.mktemp("alerts")
    repository = workdir / "repository"
    repository.mkdir()
    address = runner_address()
    smtp, http = SmtpReceiver(address, SMTP_LOGIN), HttpReceiver(address)
    smtp.start()
    host = start_host(HOST, testhost_image, ssh_key, extra_args=("-v", f"{repository}:/srv/backup"))
    try:
        host.exec(f"ssh-keygen -q -t ed25519 -N '' -f {NIGHTLY_KEY} && cat {NIGHTLY_KEY}.pub >> /root/.ssh/authorized_keys")
        lab = AlertLab(host, workdir / "alert_hosts.py", workdir / "nightly_hosts.py", smtp, http)
        lab.first_changes = lab.converge()
        yield lab
    finally:
        remove_host(host)
        smtp.stop()
        http.close()


def test_a_clean_night_pings_the_heartbeats_and_sends_nothing(alert_lab):
    assert "Alerts | Alert settings of the nightly drift check (root-only)" in alert_lab.first_changes
    assert alert_lab.sh("stat -c '%U %a' /etc/labhub/alerts /etc/labhub/alerts/settings.json /etc/labhub/heartbeat /etc/labhub/heartbeat/backup").split() == [
        "root", "700", "root", "600", "root", "700", "root", "600"]
    units = alert_lab.sh("cat /etc/systemd/system/labhub-drift.service /etc/systemd/system/labhub-backup.service")
    assert "--alerts /etc/labhub/alerts/settings.json" in units and "/ping/" not in units and alert_lab.smtp.url() not in units
    status, journal = alert_lab.night("labhub-backup")  # the night's backup first
    assert status == 0, journal
    assert alert_lab.http.paths() == [f"/ping/backup-{HOST}/start", f"/ping/backup-{HOST}"], "'{host}' made the server's name"
    status, journal = alert_lab.night()
    assert status == 0, journal
    assert "heartbeat start: delivered" in journal and "heartbeat success: delivered" in journal, journal
    assert alert_lab.http.paths()[-2:] == ["/ping/drift/start", "/ping/drift"]
    assert alert_lab.smtp.messages == [] and not alert_lab.http.json_bodies("/chat")
    assert cli.changed_operations(cli.converge(alert_lab.inventory)) == {}


def test_drift_is_sent_once_not_again_the_next_night_and_resolved_when_fixed(alert_lab):
    host = alert_lab.sh("hostname")
    alert_lab.sh("useradd mallory && gpasswd --add mallory docker >/dev/null")
    status, journal = alert_lab.night()
    assert status != 0, "a drifted host leaves the unit failed, as before"
    assert f"alert {host}:drift (new) to mail: delivered" in journal, journal
    mail = alert_lab.smtp.wait_for(1)[0]
    print(f"the alert as the SMTP server got it:\nSubject: {mail.subject}\n{mail.body}")
    assert mail.subject == f"[Optics Lab] {host}: drift (warning)"
    assert f"Optics Lab: {host}: drifted: group docker (root-equivalent): expected members ['labadmin'], found ['labadmin', 'mallory']" in mail.body
    assert "Read more: the report /var/lib/labhub/drift/" in mail.body and "drift.md" in mail.body
    assert not alert_lab.http.json_bodies("/chat"), "a warning does not go to a target that wants critical ones"

    status, journal = alert_lab.night()
    assert "alert " not in journal, "no second message within remind_hours"
    assert len(alert_lab.smtp.messages) == 1

    alert_lab.sh("gpasswd --delete mallory docker >/dev/null && userdel mallory")
    status, journal = alert_lab.night()
    assert status == 0, journal
    resolved = alert_lab.smtp.wait_for(2)[1]
    assert resolved.subject == f"[Optics Lab] RESOLVED: {host}: drift (warning)"
    for text in [journal, *(m.subject + m.body for m in alert_lab.smtp.messages)]:
        assert SENTINEL not in text and SMTP_LOGIN[1] not in text


def test_a_failing_backup_pings_fail_and_raises_a_critical_alert(alert_lab):
    alert_lab.sh("mv /srv/backup/labhub/config /srv/backup/labhub/config.away")  # the repository broken
    status, journal = alert_lab.night("labhub-backup")
    assert status != 0
    assert alert_lab.http.paths()[-1] == f"/ping/backup-{HOST}/fail", alert_lab.http.paths()[-3:]
    status, journal = alert_lab.night()
    host = alert_lab.sh("hostname")
    chat = alert_lab.http.json_bodies("/chat")
    assert [body["title"] for body in chat] == [f"[Optics Lab] {host}: backup (critical)"], chat
    assert "backup: expected the last run to succeed, found labhub-backup.service failed" in chat[0]["message"]
    assert alert_lab.smtp.wait_for(3)[2].subject == f"[Optics Lab] {host}: backup (critical)"
    alert_lab.sh("mv /srv/backup/labhub/config.away /srv/backup/labhub/config")
    assert alert_lab.night("labhub-backup")[0] == 0
    alert_lab.night()
    assert alert_lab.http.json_bodies("/chat")[-1]["title"] == f"[Optics Lab] RESOLVED: {host}: backup (critical)"


def test_a_full_disk_names_the_largest_home_and_an_undelivered_alert_does_not_fail_the_night(alert_lab):
    alert_lab.sh("head -c 3M /dev/urandom > /home/jupyter-bob/results.bin")
    alert_lab.converge(disk_percent=1)  # below today's use of every filesystem
    before = len(alert_lab.smtp.messages)
    status, journal = alert_lab.night()
    host = alert_lab.sh("hostname")
    mail = alert_lab.smtp.wait_for(before + 1)[before]
    assert mail.subject == f"[Optics Lab] {host}: disk (warning)", mail.subject
    assert "expected at most 1% used (alerts.disk_percent)" in mail.body and "the largest homes: jupyter-bob" in mail.body, mail.body

    alert_lab.smtp.stop()  # the relay is away: the "resolved" message cannot go
    try:
        alert_lab.converge()
        status, journal = alert_lab.night()
        assert status == 0, journal
        assert f"alert {host}:disk (resolved) to mail: NOT delivered (E-Mail: " in journal and "tried again at the next run" in journal, journal
        assert SMTP_LOGIN[1] not in journal and str(alert_lab.smtp.port) not in journal.split("NOT delivered")[1].split("\n")[0]
        alert_lab.http.close()  # the heartbeat's receiver away too: the backup still succeeds, and says so
        try:
            status, journal = alert_lab.night("labhub-backup")
        finally:
            alert_lab.http = HttpReceiver(alert_lab.http.address, alert_lab.http.port)  # back first: the next tests need it
        assert status == 0 and "labhub-heartbeat: backup success: NOT delivered" in journal, journal
    finally:
        alert_lab.smtp.start()  # a failure here does not fail the next tests too
    status, journal = alert_lab.night()
    assert f"alert {host}:disk (resolved) to mail: delivered" in journal, journal
    assert alert_lab.smtp.wait_for(1)[-1].subject == f"[Optics Lab] RESOLVED: {host}: disk (warning)"


def test_the_test_command_says_for_each_target_whether_it_was_delivered(alert_lab):
    run = cli.drift_check(alert_lab.inventory, "--test-alerts")
    assert run.returncode == 0, run.explain()
    assert run.stdout.splitlines() == ["mail (E-Mail): delivered", "chat (JSON): delivered"], run.stdout
    assert alert_lab.smtp.wait_for(1)[-1].subject == "[Optics Lab] a test message from labhub"
    assert alert_lab.smtp.url() not in run.output and SMTP_LOGIN[1] not in run.output


def test_a_url_written_in_data_is_refused_before_any_host_is_contacted(alert_lab, tmp_path):
    data = {**alert_lab.data, "alerts": {"enabled": True, "targets": [{"name": "mail", "url": alert_lab.smtp.url()}]}}
    inventory = write_inventory(tmp_path / "bad_hosts.py", [(alert_lab.host, data)])
    inventory.with_suffix(".secrets.toml").write_text(alert_lab.inventory.with_suffix(".secrets.toml").read_text())
    inventory.with_suffix(".secrets.toml").chmod(0o600)
    run = cli.pyinfra(inventory, "-y", "deploy.py")
    assert run.returncode != 0 and "no host was contacted" in run.output
    assert "alerts.targets[0].url: a notification URL holds passwords or tokens and never goes in host data" in run.output
    assert SMTP_LOGIN[1] not in run.output and alert_lab.smtp.url() not in run.output
