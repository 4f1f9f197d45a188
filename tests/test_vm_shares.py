"""CIFS shares with a real kernel and a real server: a Debian 13 VM (qemu, software
emulation) provisioned by the real pyinfra CLI over SSH, mounting two shares from a Samba
server on the runner's loopback. Credentials of `data` come from environment variables,
those of `analysis` from the secrets file next to the inventory. The cases run in order on
the session's VM (tests/harness/vmlab.py), before tests/test_vm_quotas.py uses it."""

from __future__ import annotations

import hashlib
import time

import pytest

from tests.harness import cli
from tests.harness.samba import ACCOUNT
from tests.harness.vmlab import FIRST_PASSWORD, SHARES

pytestmark = pytest.mark.vm

SECOND_PASSWORD = "Samba-Second-4w?Z"
WRONG_PASSWORD = "Not-The-Password-9e"


@pytest.fixture
def lab(vm_lab):
    return vm_lab


def test_first_converge_mounts_both_shares_and_a_second_changes_nothing(lab):
    assert "Shares | Shares mounted as fstab says" in lab.first_changes
    assert set(lab.mounted()) == {"/mnt/data", "/mnt/analysis"}
    assert lab.converge() == []
    assert cli.dry_plan(lab.inventory, env=lab.env) == {}
    print(f"first converge of the VM: {lab.first_converge_seconds:.0f} s")


def test_the_read_only_share_is_read_only(lab):
    assert lab.mounted()["/mnt/data"].split()[2].startswith("ro,")
    assert lab.sh("cat /mnt/data/readme.txt") == "measurements from the beamline"
    write = lab.vm.ssh("touch /mnt/data/new-file", check=False)
    assert write.returncode != 0 and "Read-only file system" in write.stderr


def test_the_read_write_share_is_writable_with_the_configured_owner_and_modes(lab):
    lab.sh("su -s /bin/sh jupyter-alice -c 'echo from the vm > /mnt/analysis/result.txt && mkdir /mnt/analysis/run1'")
    owner = lab.sh("stat -c '%u %g %a' /mnt/analysis/result.txt /mnt/analysis/run1").splitlines()
    assert owner == ["1001 100 664", "1001 100 775"], "uid=jupyter-alice, gid=users, file_mode 0664, dir_mode 0775"
    assert (lab.samba.analysis / "result.txt").read_text() == "from the vm\n", "the file reached the Samba server"
    assert (lab.samba.analysis / "run1").is_dir()


def test_fstab_verifies_and_holds_no_secret(lab):
    verify = lab.vm.ssh("findmnt --verify", check=False)
    assert verify.returncode == 0 and "Success, no errors or warnings detected" in verify.stdout + verify.stderr, verify.stdout + verify.stderr
    fstab = lab.sh("cat /etc/fstab")
    assert FIRST_PASSWORD not in fstab and "password" not in fstab
    assert lab.sh("stat -c '%U %G %a' /etc/labhub/credentials /etc/labhub/credentials/*").splitlines() == [
        "root root 700", "root root 600", "root root 600", "root root 600", "root root 600"]


def test_the_host_checks_pass_on_the_vm_mounts_included(lab):
    checks = cli.host_checks(lab.inventory, env=lab.env)
    assert checks.returncode == 0, checks.explain()
    assert "PASSED labhub/checks/test_shares.py::test_shares_are_mounted_as_data_says[labhub-vm]" in checks.stdout
    not_here = ("labhub/checks/test_hub.py", "labhub/checks/test_backup.py", "labhub/checks/test_groups.py", "is no swarm worker")
    skipped = [line for line in checks.stdout.splitlines() if line.startswith("SKIPPED") and not any(module in line for module in not_here)]
    assert skipped == [], "the VM runs no hub, makes no backups, has no research groups and is in no swarm; every other check runs there"


def test_a_changed_password_reaches_the_credentials_file_and_the_mount_keeps_working(lab):
    stamp_before = lab.sh("cat /etc/labhub/credentials/analysis.mounted")
    lab.samba.set_password(SECOND_PASSWORD)  # the file server's admins change it...
    lab.passwords = {"data": SECOND_PASSWORD, "analysis": SECOND_PASSWORD}  # ...and the lab updates its secrets
    lab.write(SHARES)
    changed = lab.converge()
    assert "Shares | Credentials files and mount points" in changed and "Shares | Shares mounted as fstab says" in changed
    digest = lab.sh("sha256sum < /etc/labhub/credentials/analysis").split()[0]
    assert digest == hashlib.sha256(f"username={ACCOUNT}\npassword={SECOND_PASSWORD}\n".encode()).hexdigest()
    assert lab.sh("cat /etc/labhub/credentials/analysis.mounted") != stamp_before, "remounted with the new password"
    lab.sh("su -s /bin/sh jupyter-alice -c 'echo after the change > /mnt/analysis/after.txt'")
    assert (lab.samba.analysis / "after.txt").read_text() == "after the change\n"
    assert lab.converge() == []


def test_a_mount_that_fails_names_share_server_and_error_and_a_fixed_rerun_converges(lab):
    lab.passwords = {"data": WRONG_PASSWORD, "analysis": SECOND_PASSWORD}
    lab.write(SHARES)
    run, _ = lab.deploy()
    assert run.returncode != 0
    assert "[labhub-vm] share 'data' (//10.0.2.2/data on /mnt/data): mount failed: mount error(13): Permission denied" in run.output, run.explain()
    assert "Shares mounted as fstab says" in run.output
    assert WRONG_PASSWORD not in run.output and SECOND_PASSWORD not in run.output
    lab.passwords = {"data": SECOND_PASSWORD, "analysis": SECOND_PASSWORD}
    lab.write(SHARES)
    assert "Shares | Shares mounted as fstab says" in lab.converge()
    assert set(lab.mounted()) == {"/mnt/data", "/mnt/analysis"}
    assert lab.converge() == []


def test_a_reboot_without_the_server_comes_up_and_the_next_run_mounts_again(lab):
    lab.samba.stop()
    seconds = lab.vm.reboot()
    print(f"reboot with the file server down: SSH back after {seconds:.0f} s")
    assert lab.sh("systemctl is-active ssh") == "active"
    assert lab.mounted() == {}, "the shares are simply absent"
    lab.samba.start()
    assert lab.converge() == ["Shares | Shares mounted as fstab says"]
    assert set(lab.mounted()) == {"/mnt/data", "/mnt/analysis"}
    assert lab.sh("cat /mnt/analysis/after.txt") == "after the change"


def test_a_share_removed_from_data_is_unmounted_and_its_files_removed(lab):
    lab.write(SHARES[:1])
    changed = lab.converge()
    assert "Shares | fstab lines of the shares" in changed
    assert set(lab.mounted()) == {"/mnt/data"}
    assert "/mnt/analysis" not in lab.sh("cat /etc/fstab")
    assert lab.sh("ls -A /etc/labhub/credentials") == "data\ndata.mounted"
    assert lab.vm.ssh("test -e /mnt/analysis", check=False).returncode != 0, "the empty mount point is gone"
    assert lab.converge() == []
