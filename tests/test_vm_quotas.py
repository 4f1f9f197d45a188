"""Home quotas enforced by a real kernel: the session's VM (tests/harness/vmlab.py), after
tests/test_vm_shares.py, provisioned by the real pyinfra CLI. Its root filesystem is ext4
without project quotas, so the first run must stop before changing anything; a disk that holds
a filesystem must be refused untouched; the empty disk is formatted as XFS and the homes move
onto it. Then the members write as their own UIDs, data changes a quota, a person removes one
by hand, a home fills up, and a research group's folder gets its own quota. Then the server is
restored from its backup with its quotas kept (and a home over its quota named before anything
moves), the lab page's helper reads a quota, and df in a container with her home mounted shows
it. (The container test hosts' kernel has no quota support.)"""

from __future__ import annotations

import base64
import json
import shlex

import pytest

from labhub.local import REPO
from tests.harness import cli
from tests.harness.vmlab import EMPTY_DISK, GROUPS_DISK, SHARES, USED_DISK, USED_DISK_FILE

pytestmark = pytest.mark.vm

USERS = [{"name": "alice", "uid": 1001}, {"name": "bob", "uid": 1002, "home_quota": "30M"}]
QUOTAS = "Disk | project quotas of homes and group folders"
MOVE = "Disk | homes on their own disk (XFS, project quotas)"
# What the move must keep: every path under /home with its owner, group, mode, link target and content.
LISTING = "cd /home && find . -printf '%p %u %g %m %l ' -exec sh -c '[ -f \"$1\" ] && sha256sum < \"$1\" | cut -c1-16 || echo' _ {} \\; | sort"


@pytest.fixture
def lab(vm_lab):
    return vm_lab


def write(lab, **hub) -> None:
    lab.write(SHARES[:1], hub=hub, users=USERS)


def size_mib(lab, path: str) -> int:
    """The size df gives a directory, in MiB: with a project quota, its limit."""
    return int(lab.sh(f"df -P -B1M {path} | tail -n 1").split()[1])


def test_a_filesystem_without_project_quotas_stops_the_run_before_any_change(lab):
    state = "sha256sum /etc/fstab /etc/passwd; command -v mkfs.xfs || echo no-xfsprogs; findmnt -n -o SOURCE /home || echo no-mount"
    before = lab.sh(state)
    write(lab, home_quota="20M")
    run, _ = lab.deploy()
    assert run.returncode != 0
    assert ("host 'labhub-vm': /home/jupyter-alice needs a quota, but its filesystem (/dev/vda on /, ext4, options "
            "rw,relatime,errors=remount-ro) has no project quotas. Nothing was changed. To fix it: labhub's quotas need XFS: "
            "give hub.homes_device an empty disk or logical volume") in run.output, run.explain()
    assert lab.sh(state) == before, "no account made (bob), fstab as it was, /home where it was"


def test_a_disk_that_holds_a_filesystem_is_refused_and_left_as_it_was(lab):
    digest = lab.sh(f"sha256sum {USED_DISK}")
    write(lab, home_quota="20M", homes_device=USED_DISK)
    run, _ = lab.deploy()
    assert run.returncode != 0
    assert (f"host 'labhub-vm': hub.homes_device {USED_DISK} holds a filesystem (ext4, label 'old-data'); labhub formats only an "
            f"empty device, and nothing was changed. Name an empty disk, or, if nothing on it is needed any more, empty it "
            f"yourself (wipefs -a {USED_DISK})") in run.output, run.explain()
    assert lab.sh(f"sha256sum {USED_DISK}") == digest
    assert lab.sh(f"mkdir -p /mnt/old && mount -o ro {USED_DISK} /mnt/old && cat /mnt/old/{USED_DISK_FILE[0]}; umount /mnt/old") == USED_DISK_FILE[1].strip()


def test_an_empty_disk_gets_the_homes_with_every_owner_and_mode_and_a_second_run_changes_nothing(lab):
    lab.sh("cd /home/jupyter-alice && install -m 640 -o jupyter-alice -g users /dev/null notes.txt && echo 'E = mc^2' > notes.txt "
           "&& install -d -m 700 -o jupyter-alice -g users results && ln -sf notes.txt results/latest && chown -h jupyter-alice results/latest")
    before = lab.sh(LISTING)
    write(lab, home_quota="20M", homes_device=EMPTY_DISK)
    changes = lab.converge()
    assert MOVE in changes and QUOTAS in changes
    mount = lab.sh("findmnt -n -o SOURCE,FSTYPE,OPTIONS /home").split()
    assert mount[:2] == [EMPTY_DISK, "xfs"] and "prjquota" in mount[2].split(",")
    assert "LABEL=labhub-homes" in lab.sh(f"blkid -p -o export {EMPTY_DISK}")
    after = lab.sh(LISTING).splitlines()
    assert [line for line in after if not line.startswith("./jupyter-bob")] == before.splitlines(), "bob's home is new; the rest is as it was"
    assert f"{EMPTY_DISK} /home xfs defaults,prjquota 0 2" in lab.sh("cat /etc/fstab").splitlines()
    verify = lab.vm.ssh("findmnt --verify", check=False)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert (size_mib(lab, "/home/jupyter-alice"), size_mib(lab, "/home/jupyter-bob")) == (20, 30), "df on a home shows its quota"
    assert lab.converge() == []
    assert cli.dry_plan(lab.inventory, env=lab.env) == {}


def test_a_member_past_her_quota_is_refused_while_another_writes_at_the_same_moment(lab):
    # Both write at once, as their own UIDs; XFS answers a full project with ENOSPC ("No space
    # left on device", as a full disk would), not EDQUOT; df on her home shows it full.
    out = lab.sh(
        "su -s /bin/sh jupyter-alice -c 'dd if=/dev/zero of=/home/jupyter-alice/fill bs=1M count=40 2>&1; echo rc=$?' > /tmp/alice.out & "
        "su -s /bin/sh jupyter-bob -c 'dd if=/dev/zero of=/home/jupyter-bob/run.dat bs=1M count=10 2>&1; echo rc=$?' > /tmp/bob.out & "
        "wait; cat /tmp/alice.out; echo ---; cat /tmp/bob.out; echo ---; "
        "stat -c %s /home/jupyter-alice/fill /home/jupyter-bob/run.dat; df -P -B1M /home/jupyter-alice | tail -n 1"
    )
    alice, bob, sizes = out.split("---")
    assert "No space left on device" in alice and "rc=1" in alice
    assert "rc=0" in bob and "No space" not in bob
    alice_bytes, bob_bytes, df = sizes.strip().splitlines()
    assert int(alice_bytes) <= 20 * 1024 * 1024 and int(bob_bytes) == 10 * 1024 * 1024
    assert df.split()[1] == "20" and int(df.split()[3]) <= 1, f"her df (size, used, available in MiB, rounded up): {df}"
    assert lab.sh("dd if=/dev/zero of=/var/tmp/host-still-writes bs=1M count=5 2>&1 && rm /var/tmp/host-still-writes; echo ok").endswith("ok")
    lab.sh("rm /home/jupyter-alice/fill /home/jupyter-bob/run.dat")


def test_a_quota_raised_in_data_is_raised_on_the_host_and_the_next_run_changes_nothing(lab):
    write(lab, home_quota="40M", homes_device=EMPTY_DISK)
    assert lab.converge() == [QUOTAS]
    assert (size_mib(lab, "/home/jupyter-alice"), size_mib(lab, "/home/jupyter-bob")) == (40, 30), "bob keeps his own"
    assert lab.converge() == []
    assert cli.dry_plan(lab.inventory, env=lab.env) == {}


def test_the_drift_check_names_a_home_whose_quota_was_removed_and_one_nearly_full(lab, tmp_path):
    lab.sh("xfs_quota -x -c 'limit -p bhard=0 1001' /home && "
           "su -s /bin/sh jupyter-bob -c 'dd if=/dev/zero of=/home/jupyter-bob/big bs=1M count=29 2>/dev/null'")
    run = cli.drift_check(lab.inventory, "--report-dir", str(tmp_path), env=lab.env)
    assert run.returncode == 2, run.explain()
    drift = json.loads((tmp_path / "drift.json").read_text())["hosts"]["labhub-vm"]["drift"]
    checks = {f["resource"]: f["detail"] for f in drift if f["source"] == "check"}
    assert checks["/home/jupyter-alice"].startswith("expected a quota of 40 MiB, found no limit"), checks
    assert checks["/home/jupyter-bob"].startswith("96% of its quota used (29 MiB of 30 MiB; alerts.quota_percent is 95)"), checks
    assert QUOTAS in {f["resource"] for f in drift if f["source"] == "plan"}
    assert lab.converge() == [QUOTAS]
    assert size_mib(lab, "/home/jupyter-alice") == 40
    lab.sh("rm /home/jupyter-bob/big")
    assert cli.drift_check(lab.inventory, "--report-dir", str(tmp_path), env=lab.env).returncode == 0


def test_a_group_folder_on_an_xfs_with_project_quotas_gets_its_own(lab):
    # The sysadmin's own XFS for the groups' folders, mounted with prjquota (as docs/disk.md says).
    lab.sh(f"mkfs.xfs -q -L groups {GROUPS_DISK} && mkdir -p /srv/groups && echo '{GROUPS_DISK} /srv/groups xfs defaults,prjquota 0 2' >> /etc/fstab "
           "&& systemctl daemon-reload && mount /srv/groups")
    lab.write(SHARES[:1], hub={"home_quota": "40M", "homes_device": EMPTY_DISK}, users=USERS,
              groups=[{"name": "optics", "members": ["alice"], "quota": "10M"}])
    changes = lab.converge()
    assert "Groups | group folders (setgid, 2770)" in changes and QUOTAS in changes
    gid = int(lab.sh("getent group lab-optics | cut -d: -f3"))
    assert lab.sh("lsattr -pd /srv/groups/optics").split()[0] == str(2_000_000_000 + gid), "its own project, apart from every UID"
    assert size_mib(lab, "/srv/groups/optics") == 10
    out = lab.sh("su -s /bin/sh jupyter-alice -c 'dd if=/dev/zero of=/srv/groups/optics/spectra bs=1M count=20 2>&1; echo rc=$?'; "
                 "stat -c %s /srv/groups/optics/spectra")
    assert "No space left on device" in out and "rc=1" in out and int(out.splitlines()[-1]) <= 10 * 1024 * 1024
    lab.sh("rm /srv/groups/optics/spectra")
    assert lab.converge() == []


def test_a_restored_server_keeps_its_quotas_and_a_home_over_its_quota_is_named_before_anything_moves(lab):
    # Nightly backups on, alice's 15 MiB backed up and then deleted; the whole server restored
    # (--data restore=latest, as after a reinstall): the deploy sets the quotas first, then the
    # homes come back into them.
    users = [{"name": "alice", "uid": 1001}, {"name": "bob", "uid": 1002, "home_quota": "30M"}]
    hub, groups = {"home_quota": "40M", "homes_device": EMPTY_DISK}, [{"name": "optics", "members": ["alice"], "quota": "10M"}]
    backup = {"enabled": True, "repository": "/srv/backup/labhub"}
    lab.write(SHARES[:1], hub=hub, users=users, groups=groups, backup=backup)
    assert "Backup | Repository secrets and the backup scripts" in lab.converge()
    home = "/home/jupyter-alice"
    lab.sh(f"rm -rf {home}/* /srv/groups/optics/* && su -s /bin/sh jupyter-alice -c 'head -c 15M /dev/urandom > {home}/spectra.bin' "
           "&& systemctl start labhub-backup")
    digest = lab.sh(f"sha256sum < {home}/spectra.bin && rm {home}/spectra.bin")
    restore = ("--data", "restore=latest", "--data", "restore_force=true")
    cli.converge(lab.inventory, *restore, env=lab.env, timeout=900)
    assert lab.sh(f"sha256sum < {home}/spectra.bin") == digest
    project, flags = lab.sh(f"lsattr -pd {home}").split()[:2]
    assert project == "1001" and "P" in flags, "her home is still in her project, inherited: what came back counts"
    assert lab.sh(f"lsattr -p {home}/spectra.bin").split()[0] == "1001"
    assert size_mib(lab, home) == 40 and int(lab.sh(f"df -P -B1M {home} | tail -n 1").split()[2]) >= 15
    out = lab.sh(f"su -s /bin/sh jupyter-alice -c 'dd if=/dev/zero of={home}/fill bs=1M count=40 2>&1; echo rc=$?; rm -f {home}/fill'")
    assert "No space left on device" in out and "rc=1" in out, out
    # Her quota lowered under what the snapshot holds: the restore names her and moves nothing.
    lab.write(SHARES[:1], hub=hub, users=[{**users[0], "home_quota": "10M"}, users[1]], groups=groups, backup=backup)
    before = lab.sh(LISTING)
    snapshot = lab.sh("cat /var/lib/labhub/restored").split()[1]  # by its ID: 'latest' was restored once already
    run, _ = cli.deploy(lab.inventory, "--data", f"restore={snapshot}", "--data", "restore_force=true", env=lab.env, timeout=900)
    assert run.returncode != 0
    assert ("alice's home (/home/jupyter-alice) holds 16 MiB in the snapshot, over its quota of 10 MiB; raise these quotas in data") in run.output, run.explain()
    assert lab.sh(LISTING) == before, "nothing moved"


def test_the_lab_pages_helper_reads_her_quota_and_refuses_a_restore_past_it(lab):
    # The lab page's host side (files/labhub-lab-helper) against a real quota. The VM runs no
    # hub, so the helper is run here as its unit runs it: root, restic.env, its settings.
    helper = base64.b64encode((REPO / "files" / "labhub-lab-helper").read_bytes()).decode()
    settings = {"host": "labhub-vm", "restores_per_hour": 10, "groups": [], "tls": None, "drift_reports": "/var/lib/labhub/drift"}
    lab.sh(f"command -v python3 >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 >/dev/null; "
           f"echo {helper} | base64 -d > /root/lab-helper && echo {shlex.quote(json.dumps(settings))} > /root/lab-page.json")

    def ask(**request) -> dict:
        return json.loads(lab.sh(f"set -a; . /etc/labhub/backup/restic.env; set +a; echo {shlex.quote(json.dumps(request))} | "
                                 "LABHUB_LAB_SETTINGS=/root/lab-page.json python3 /root/lab-helper"))

    # alice holds 15 MiB under the 10 MiB quota the last run set (XFS lets a limit fall below use).
    mine = ask(action="member", member="alice")
    assert mine["ok"] and mine["space"]["quota"] and (mine["space"]["size"], mine["space"]["free"]) == (10 * 2**20, 0), mine
    answer = ask(action="restore", member="alice", snapshot=mine["snapshots"][0]["id"], path="spectra.bin")
    assert answer == {"ok": False, "error": "'spectra.bin' needs 16 MiB and your home has 0 MiB free: make room first"}, answer
    # With room again (the quota raised by hand, as data would), the restore comes back as hers, in her project.
    lab.sh("xfs_quota -x -c 'limit -p bhard=60m 1001' /home")
    answer = ask(action="restore", member="alice", snapshot=mine["snapshots"][0]["id"], path="spectra.bin")
    assert answer["ok"], answer
    restored = lab.sh("ls -d /home/jupyter-alice/restored/*/spectra.bin")
    assert lab.sh(f"stat -c %U {restored}") == "jupyter-alice" and lab.sh(f"lsattr -p {restored}").split()[0] == "1001"


def test_df_in_a_container_with_her_home_mounted_as_her_server_has_it_shows_her_quota(lab):
    # Her server is a Docker container with her home bind-mounted, run as her UID (DockerSpawner);
    # the VM runs no hub, so a container of the smallest image that holds df (made here from the
    # VM's own df and the libraries it links) stands in for it, mounted and run the same way.
    lab.sh("docker image inspect df-only >/dev/null 2>&1 || "
           "tar -C / -chf - usr/bin/df $(ldd /usr/bin/df | grep -o '/[^ ]*' | sed 's#^/##') | docker import - df-only >/dev/null")
    df = lab.sh("docker run --rm --user 1001:100 -v /home/jupyter-alice:/home/jovyan df-only /usr/bin/df -P -B1M /home/jovyan | tail -n 1").split()
    assert df[1] == "60", f"df of her home inside the container: its size is her quota (60 MiB, as the last test set it), found {df}"
