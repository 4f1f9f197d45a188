"""The restore drill: a lab server with the hub and nightly restic backups is used, backed up
and destroyed; a fresh server of the same name, from the same inventory, is provisioned with
`--data restore=latest`, and its member logs in with her old password, finds her notebook
(owned by her account, whose UID differs on the new server) and starts her server.

Around it: an incremental backup adds almost nothing, a backup taken while the hub writes
restores to a sound database, retention keeps what the policy says, an old backup is drift,
and a restore is refused onto a server with lab data, with a wrong password and for a
snapshot that does not exist, each time changing nothing. The repository is a local path
(see tests/harness/backuplab.py). Cases run in order."""

from __future__ import annotations

import datetime
import json
import threading
import time

import pytest

from tests.harness import cli
from tests.harness.backuplab import BACKUP_PASSWORD, POLICY, RESTIC, SERVER, drill_server
from tests.harness.hosts import remove_host
from tests.harness.hubclient import HubUser
from tests.harness.lab import write_secrets

pytestmark = [pytest.mark.hub, pytest.mark.backup]

ALICE_PASSWORD = "alice-before-the-reinstall-3"
NOTEBOOK = {"cells": [{"cell_type": "markdown", "metadata": {}, "source": "# Chapter 3: results"}], "metadata": {},
            "nbformat": 4, "nbformat_minor": 5}
NOTEBOOK_PATH = "home/jupyter-alice/thesis/chapter3.ipynb"
GROUP_FILE = "/srv/groups/optics/spectra.csv"  # in the folder of her research group
# On the new server two accounts exist before the deploy, so useradd gives every account of
# the lab another UID than on the old one: owners can only come out right by name.
UID_SHIFT = "useradd --create-home filler1 && useradd filler2"
RESTORE_LATEST = ("--data", "restore=latest")


@pytest.fixture(scope="module")
def repository(tmp_path_factory):
    return tmp_path_factory.mktemp("backup-repository")


@pytest.fixture(scope="module")
def drill(tmp_path_factory, hub_snapshot, ssh_key, repository):
    """What the cases share: the old server while it lives (a copy of the run's converged hub
    host, given backups), what was measured on it."""
    workdir = tmp_path_factory.mktemp("drill")
    state = {"workdir": workdir}
    with drill_server(workdir, hub_snapshot, ssh_key, repository, "old") as old:
        state["old"] = old
        state["first_run"] = old.converge()
        yield state
        state.pop("old", None)


def uid_of(server, account: str) -> str:
    return server.host.exec(f"id -u {account}").stdout.strip()


def test_a_backed_up_server_converges_and_a_second_run_changes_nothing(drill):
    old = drill["old"]
    changed = cli.changed_operations(drill["first_run"])[SERVER]
    for operation in ("Backup | restic, sqlite3", "Backup | Repository secrets and the backup scripts",
                      "Backup | Repository opens with the password", "Backup | Timer enabled and waiting"):
        assert operation in changed
    assert old.host.exec(f"{RESTIC} cat config >/dev/null && echo initialised").stdout.strip() == "initialised"
    assert cli.changed_operations(old.converge()) == {}
    assert cli.dry_plan(old.inventory) == {}
    assert old.host.exec("systemctl is-enabled labhub-backup.timer").stdout.strip() == "enabled"
    # Until the first night, the host checks say there is no backup yet.
    checks = cli.host_checks(old.inventory)
    assert checks.returncode != 0 and "backup: expected a successful backup within 36 h, found none yet" in checks.output, checks.explain()


def test_a_members_work_is_backed_up(drill):
    old = drill["old"]
    alice = HubUser(old.url)
    assert alice.login("alice", ALICE_PASSWORD), "the first login sets alice's password"
    drill["token"] = alice.create_token("alice")
    alice.start_server("alice")
    assert alice.api("PUT", "/user/alice/api/contents/home/jupyter-alice/thesis", {"type": "directory"})[0] == 201
    assert alice.api("PUT", f"/user/alice/api/contents/{NOTEBOOK_PATH}", {"type": "notebook", "content": NOTEBOOK})[0] == 201
    # Her measurements: 5 MiB that a second backup must not store again.
    old.host.exec("head -c 5M /dev/urandom > /home/jupyter-alice/thesis/measurements.bin && chown jupyter-alice:users /home/jupyter-alice/thesis/measurements.bin")
    # Her group's folder (research group optics): backed up too.
    old.host.exec(f"echo 'shared spectra' > {GROUP_FILE} && chown jupyter-alice:lab-optics {GROUP_FILE}")
    # A link out of her home, which a restore of her files must refuse to follow.
    old.host.exec("ln -s /home/jupyter-bob /home/jupyter-alice/escape && chown -h jupyter-alice:users /home/jupyter-alice/escape")
    drill["alice_uid"] = uid_of(old, "jupyter-alice")
    drill["secrets"] = old.host.exec("sha256sum /opt/jupyterhub/secrets.env").stdout.split()[0]

    record, seconds = old.backup()
    drill["full"] = (record, seconds)
    print(f"full backup: {record['summary']['data_added']} bytes added, {seconds:.1f} s")
    assert record["summary"]["data_added"] > 5 * 1024 * 1024
    checks = cli.host_checks(old.inventory)
    assert checks.returncode == 0, checks.explain()
    assert "PASSED labhub/checks/test_backup.py::test_the_last_backup_succeeded_recently[labserver]" in checks.stdout


def test_a_second_backup_with_nothing_changed_adds_almost_nothing(drill):
    old = drill["old"]
    full, _ = drill["full"]
    record, seconds = old.backup()
    added = record["summary"]["data_added"]
    print(f"incremental backup, nothing changed: {added} bytes added (full: {full['summary']['data_added']}), {seconds:.1f} s")
    assert added < 1024 * 1024 and added < full["summary"]["data_added"] / 10, "deduplicated: only the hub's state moved"


def restore_files(old, *data: str) -> cli.Run:
    return cli.pyinfra(old.inventory, "-y", "restore-files.py", *[arg for item in data for arg in ("--data", item)])


def test_a_members_deleted_folder_comes_back_into_her_restored_folder_from_the_command_line(drill):
    old, home = drill["old"], "/home/jupyter-alice"
    snapshots = json.loads(old.host.exec(f"{RESTIC} snapshots --json --host {SERVER} --tag labhub").stdout)
    date = snapshots[-1]["time"][:10]
    files = "thesis/chapter3.ipynb thesis/measurements.bin"
    before = old.host.exec(f"cd {home} && sha256sum {files}").stdout
    old.host.exec(f"rm -r {home}/thesis")

    run = restore_files(old, "member=alice", "path=thesis", f"snapshot={date}")
    assert run.returncode == 0, run.explain()
    assert f"restored 'thesis' of alice from snapshot {snapshots[-1]['short_id']} ({date} " in run.output
    restored = f"{home}/restored/{date}"
    assert old.host.exec(f"cd {restored} && sha256sum {files}").stdout == before, "byte-identical"
    owners = old.host.exec(f"find {home}/restored -printf '%u:%g\n' | sort -u").stdout.split()
    assert owners == ["jupyter-alice:users"], "written as her"
    assert old.host.exec("ls -A /var/lib/labhub | grep -c restore-files || true").stdout.strip() == "0", "no staging left"

    again = restore_files(old, "member=alice", "path=thesis", f"snapshot={date}")
    assert again.returncode != 0 and f"{restored}/thesis exists already (from an earlier restore?); move or rename it" in again.output
    assert old.host.exec(f"cd {restored} && sha256sum {files}").stdout == before, "not overwritten"

    link = restore_files(old, "member=alice", "path=escape")
    assert link.returncode != 0 and "'escape' is a symbolic link out of her home (to /home/jupyter-bob)" in link.output, link.explain()
    for bad, says in (("path=../jupyter-bob", "without '..'"), ("path=/etc/shadow", "relative to it"), ("path=thesis/../../jupyter-bob", "without '..'")):
        refused = restore_files(old, "member=alice", bad)
        assert refused.returncode != 0 and says in refused.output and "no host was contacted" in refused.output, refused.explain()
    assert old.host.exec(f"ls -A {home}/restored/{date}").stdout.split() == ["thesis"], "nothing else was written"
    old.host.exec(f"mv {restored}/thesis {home}/thesis && rm -r {home}/restored")


def test_a_backup_taken_while_the_hub_writes_restores_to_a_sound_database(drill):
    old = drill["old"]
    alice = HubUser(old.url)
    alice.token = drill["token"]
    writes, stop = [], threading.Event()

    def write_tokens():
        while not stop.is_set() and len(writes) < 2000:
            writes.append(alice.api("POST", "/hub/api/users/alice/tokens", {"note": "written during the backup", "expires_in": 3600})[0])

    writer = threading.Thread(target=write_tokens)
    writer.start()
    try:
        time.sleep(1)
        before = len(writes)
        old.backup()
        during = len(writes) - before
    finally:
        stop.set()
        writer.join(timeout=60)
    assert during > 0 and set(writes) == {201}, f"the hub wrote during the backup: {during} writes"
    check = old.host.exec(
        f"{RESTIC} dump latest /var/lib/labhub/backup/hub/data/jupyterhub.sqlite > /tmp/restored.sqlite && "
        "sqlite3 /tmp/restored.sqlite 'PRAGMA integrity_check' && "
        "sqlite3 /tmp/restored.sqlite \"select count(*) from api_tokens where note = 'written during the backup'\"").stdout.split()
    print(f"{during} token writes during the backup; the restored database: {check}")
    assert check[0] == "ok" and int(check[1]) >= 1


def restic_keeps(times: list[datetime.datetime], daily: int, weekly: int, monthly: int) -> set[datetime.datetime]:
    """What `restic forget --keep-daily/weekly/monthly` keeps, as restic documents it: for each
    rule, the newest snapshot of each of the N newest days (ISO weeks, months) with one."""
    kept = set()
    for count, bucket in ((daily, lambda t: t.date()), (weekly, lambda t: t.isocalendar()[:2]), (monthly, lambda t: (t.year, t.month))):
        last = None
        for when in sorted(times, reverse=True):
            if count and bucket(when) != last:
                kept.add(when)
                last, count = bucket(when), count - 1
    return kept


def snapshot_time(snapshot: dict) -> datetime.datetime:
    return datetime.datetime.fromisoformat(snapshot["time"][:19])


def test_retention_keeps_exactly_what_the_policy_says(drill):
    old = drill["old"]
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None, microsecond=0)
    ages = [datetime.timedelta(days=d, hours=h) for d, h in ((1, 0), (2, 1), (2, 3), (5, 0), (9, 0), (16, 0), (40, 0), (70, 0), (100, 0))]
    for age in ages:  # earlier nights, as restic would have made them
        when = (now - age).strftime("%Y-%m-%d %H:%M:%S")
        old.host.exec(f"{RESTIC} backup --quiet --host {SERVER} --tag labhub --time '{when}' /etc/hostname")
    before = [snapshot_time(s) for s in old.snapshots()]
    record, _ = old.backup()
    after = old.snapshots()
    newest = max(snapshot_time(s) for s in after)
    expected = restic_keeps([*before, newest], POLICY["keep_daily"], POLICY["keep_weekly"], POLICY["keep_monthly"])
    assert sorted(snapshot_time(s) for s in after) == sorted(expected)
    assert record["snapshots"] == len(expected)
    print(f"retention {POLICY}: {len(before) + 1} snapshots, {len(expected)} kept")


def test_an_old_backup_is_drift_that_names_its_age(drill, tmp_path):
    old = drill["old"]
    record = old.host.exec("cat /var/lib/labhub/backup/last-success.json").stdout
    aged = json.loads(record)
    aged["finished"] -= 50 * 3600
    old.host.exec("cat > /var/lib/labhub/backup/last-success.json", input=json.dumps(aged))
    try:
        run = cli.drift_check(old.inventory, "--report-dir", str(tmp_path))
        assert run.returncode == 2, run.explain()
        assert "drifted: backup: expected a successful backup within 36 h, found the last good snapshot 50 h old" in run.stdout, run.stdout
        assert BACKUP_PASSWORD not in run.output + (tmp_path / "drift.json").read_text()
    finally:
        old.host.exec("cat > /var/lib/labhub/backup/last-success.json", input=record)
    assert cli.drift_check(old.inventory).returncode == 0


def test_a_failed_backup_is_drift(drill, tmp_path):
    old = drill["old"]
    old.host.exec("mv /srv/backup/labhub/config /srv/backup/labhub/config.away")  # the repository unreadable
    try:
        assert old.host.exec("systemctl start labhub-backup", check=False).returncode != 0
        run = cli.drift_check(old.inventory, "--report-dir", str(tmp_path))
        assert run.returncode == 2, run.explain()
        assert "drifted: backup: expected the last run to succeed, found labhub-backup.service failed" in run.stdout, run.stdout
        assert "the last good snapshot is 0 h old" in run.stdout
    finally:
        old.host.exec("mv /srv/backup/labhub/config.away /srv/backup/labhub/config")
    old.backup()
    assert cli.drift_check(old.inventory).returncode == 0


def test_a_restore_onto_a_server_with_lab_data_is_refused(drill):
    old = drill["old"]
    run, _ = old.deploy(*RESTORE_LATEST)
    assert run.returncode != 0
    assert f"[{SERVER}] refusing to restore 'latest': this host holds lab data already" in run.output, run.explain()
    assert "restore_force: True" in run.output
    assert old.host.exec("test -e /var/lib/labhub/restored", check=False).returncode != 0
    assert old.host.exec(f"test -f /{NOTEBOOK_PATH}").returncode == 0
    assert old.host.exec("docker inspect --format '{{.State.Status}}' jupyterhub-hub-1").stdout.strip() == "running"


def test_a_forced_restore_overwrites_and_the_hub_comes_back(drill):
    old = drill["old"]
    old.host.exec(f"echo 'written after the backup' > /{NOTEBOOK_PATH}.new && rm /home/jupyter-alice/thesis/measurements.bin")
    results = old.converge(*RESTORE_LATEST, "--data", "restore_force=true")
    assert "Restore | Lab restored from snapshot latest" in cli.changed_operations(results)[SERVER]
    assert old.host.exec(f"test -e /{NOTEBOOK_PATH}.new", check=False).returncode != 0, "the home is the snapshot's"
    assert old.host.exec("test -f /home/jupyter-alice/thesis/measurements.bin").returncode == 0
    assert HubUser(old.url).login("alice", ALICE_PASSWORD), "the hub came back with its database"
    assert cli.changed_operations(old.converge(*RESTORE_LATEST, "--data", "restore_force=true")) == {}, "once"


def test_the_reinstalled_server_comes_back_from_the_backup(drill, testhost_image, ssh_key, repository):
    old = drill.pop("old")
    outputs = old.outputs
    old.host.exec("systemctl start labhub-backup")  # the last night before the disk died
    remove_host(old.host)
    with drill_server(drill["workdir"], testhost_image, ssh_key, repository, "new", before=UID_SHIFT) as new:
        # A wrong password: the run fails naming the server, the step and why; nothing changes.
        write_secrets(new.inventory, {}, "not-the-repository-password")
        run, _ = new.deploy(*RESTORE_LATEST)
        assert run.returncode != 0
        assert f"[{SERVER}]" in run.output and "Repository opens with the password" in run.output, run.explain()
        assert "the password for the restic repository /srv/backup/labhub is wrong" in run.output, run.explain()
        assert new.host.exec("ls -A /home/jupyter-alice 2>/dev/null | grep -v '^\\.' ; test -e /var/lib/labhub/restored && echo restored; "
                             "docker volume ls -q 2>/dev/null", check=False).stdout.split() == []
        write_secrets(new.inventory, {}, BACKUP_PASSWORD)

        # A snapshot that does not exist: the same.
        run, _ = new.deploy("--data", "restore=deadbeef")
        assert run.returncode != 0
        assert "the repository holds no snapshot 'deadbeef'" in run.output and "nothing on this host was changed" in run.output, run.explain()
        assert new.host.exec("test -e /var/lib/labhub/restored || test -e /var/lib/labhub/restore || docker volume ls -q | grep .",
                             check=False).returncode != 0

        # The restore.
        started = time.monotonic()
        results = new.converge(*RESTORE_LATEST)
        seconds = time.monotonic() - started
        changed = cli.changed_operations(results)[SERVER]
        assert "Restore | Lab restored from snapshot latest" in changed
        print(f"restore converge of the fresh server: {seconds:.0f} s")
        # Backed up at once: its first night is not its first backup, and no alert says it has none.
        assert "Backup | A backup of the restored server" in changed
        checks = cli.host_checks(new.inventory)
        assert checks.returncode == 0 and "PASSED labhub/checks/test_backup.py::test_the_last_backup_succeeded_recently" in checks.stdout, checks.explain()

        alice = HubUser(new.url)
        assert alice.login("alice", ALICE_PASSWORD), "alice's password came back"
        assert not HubUser(new.url).login("alice", "a-new-first-login-9"), "and it is not a new first login"
        alice.token = drill["token"]
        assert json.loads(alice.api("GET", "/hub/api/user")[1])["name"] == "alice", "her API token came back"
        alice.start_server("alice")
        status, answer = alice.api("GET", f"/user/alice/api/contents/{NOTEBOOK_PATH}?content=1")
        assert status == 200 and json.loads(answer)["content"]["cells"][0]["source"] == "# Chapter 3: results"
        uid = uid_of(new, "jupyter-alice")
        assert uid != drill["alice_uid"], "the UIDs did shift on the new server"
        owner = new.host.exec(f"stat -c '%u' /{NOTEBOOK_PATH} /home/jupyter-alice/thesis /home/jupyter-alice").stdout.split()
        assert owner == [uid] * 3, "owners mapped by account name"
        assert new.host.exec("sha256sum /opt/jupyterhub/secrets.env").stdout.split()[0] == drill["secrets"], "cookie secret and proxy token"
        assert new.host.exec(f"cat {GROUP_FILE}").stdout == "shared spectra\n", "the group's folder came back"
        assert new.host.exec(f"stat -c '%U %G %a' /srv/groups/optics {GROUP_FILE}").stdout.split() == [
            "root", "lab-optics", "2770", "jupyter-alice", "lab-optics", "644"], "owned by the group on the new server"
        assert new.host.exec("stat -c '%U %a' /opt/jupyterhub/secrets.env").stdout.strip() == "root 600"

        # Converged: nothing more to do, with or without the restore setting.
        assert cli.changed_operations(new.converge(*RESTORE_LATEST)) == {}
        assert cli.changed_operations(new.converge()) == {}
        assert cli.dry_plan(new.inventory) == {}
        new.backup()
        for output in [*outputs, *new.outputs]:
            assert BACKUP_PASSWORD not in output
