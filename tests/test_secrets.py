"""Share passwords and the backup repository's password never appear in anything pyinfra prints: every byte of a full converge at
the highest verbosity (-vvv, plus --debug), a dry run with --diff after a password change,
and the --json output are captured and searched. The passwords reach the host's credentials
files all the same."""

from __future__ import annotations

import hashlib

import pytest

from tests.harness import cli
from tests.harness.hosts import remove_host, start_host, write_inventory
from tests.harness.lab import write_secrets

pytestmark = pytest.mark.host

FIRST = {"data": ("reader", "Leak-Canary-First-83#"), "analysis": ("writer", "Leak-Canary-Second-61%")}
CHANGED = {"data": ("reader", "Leak-Canary-Changed-27&"), "analysis": ("writer", "Leak-Canary-Second-61%")}
BACKUP_PASSWORD = "Leak-Canary-Restic-59~"
PASSWORDS = {password for _, password in [*FIRST.values(), *CHANGED.values()]} | {BACKUP_PASSWORD}
DATA = {
    "hub": {"enabled": False},
    "docker": {"source": "distro"},
    "users": ["alice"],
    "mount_shares": False,
    "shares": [
        {"name": "data", "server": "files.example.org", "share": "data", "mount_point": "/mnt/data", "read_only": True},
        {"name": "analysis", "server": "files.example.org", "share": "analysis", "mount_point": "/mnt/analysis", "uid": "jupyter-alice"},
    ],
    "backup": {"enabled": True, "repository": "/srv/backup/labhub"},
}


def leaked(text: str) -> list[str]:
    return [password for password in PASSWORDS if password in text]


@pytest.fixture(scope="module")
def leak_host(tmp_path_factory, testhost_image, ssh_key):
    host = start_host("leaktest", testhost_image, ssh_key)
    try:
        inventory = write_inventory(tmp_path_factory.mktemp("leak") / "leak_hosts.py", [(host, DATA)])
        yield host, inventory
    finally:
        remove_host(host)


def credentials_digest(host, name: str) -> str:
    return host.ssh(f"sha256sum < /etc/labhub/credentials/{name}").stdout.split()[0]


def expected_digest(credentials: dict, name: str) -> str:
    user, password = credentials[name]
    return hashlib.sha256(f"username={user}\npassword={password}\n".encode()).hexdigest()


def test_a_full_converge_at_the_highest_verbosity_prints_no_password(leak_host):
    host, inventory = leak_host
    write_secrets(inventory, FIRST, BACKUP_PASSWORD)
    run = cli.pyinfra(inventory, "-y", "-vvv", "--debug", "deploy.py")
    assert run.returncode == 0, run.explain()
    assert "Credentials files and mount points" in run.output and ">>> sh -c" in run.output, "really at -vvv"
    assert "Backup | Repository opens with the password" in run.output, "the backup's secrets were written and used"
    assert leaked(run.output) == []
    assert credentials_digest(host, "data") == expected_digest(FIRST, "data"), "yet the password reached the host"


def test_a_dry_run_with_diff_after_a_password_change_prints_no_password(leak_host):
    host, inventory = leak_host
    write_secrets(inventory, CHANGED, BACKUP_PASSWORD)
    run = cli.pyinfra(inventory, "--dry", "--diff", "-vvv", "deploy.py")
    assert run.returncode == 0, run.explain()
    assert leaked(run.output) == []
    plan = cli.dry_plan(inventory)
    assert "Shares | Credentials files and mount points" in plan[host.name]


def test_json_output_prints_no_password_and_the_change_lands(leak_host):
    host, inventory = leak_host
    write_secrets(inventory, CHANGED, BACKUP_PASSWORD)
    run, results = cli.deploy(inventory, "-vvv")
    assert run.returncode == 0, run.explain()
    assert leaked(run.output) == []
    assert "Shares | Credentials files and mount points" in cli.changed_operations(results)[host.name]
    assert credentials_digest(host, "data") == expected_digest(CHANGED, "data")
    dry_json = cli.pyinfra(inventory, "--dry", "--json", "-vvv", "deploy.py")
    assert leaked(dry_json.output) == []


def test_nothing_on_the_host_but_the_credentials_files_holds_a_password(leak_host):
    host, _ = leak_host
    found = host.ssh(
        "grep -rlF -e " + " -e ".join(f"'{p}'" for p in PASSWORDS) + " /etc /var/log /root /home /tmp 2>/dev/null || true"
    ).stdout.split()
    assert sorted(found) == ["/etc/labhub/backup/password", "/etc/labhub/credentials/analysis", "/etc/labhub/credentials/data"]


def test_a_backup_run_prints_no_password_and_the_unit_holds_none(leak_host):
    host, _ = leak_host
    host.ssh("systemctl start labhub-backup")
    journal = host.ssh("journalctl -u labhub-backup --no-pager -o cat").stdout
    assert "labhub-backup: " in journal and "snapshots kept" in journal, journal
    units = host.ssh("cat /etc/systemd/system/labhub-backup.service /etc/systemd/system/labhub-backup.timer").stdout
    assert leaked(journal + units) == []
