"""What tasks/shares.py promises: cifs-utils; one root-only credentials file per share with
the current credentials (compared by digest, never shown); one fstab line per share and no
password in fstab; no leftovers of removed shares; each share mounted as data says."""

import hashlib

import pytest
from pyinfra.facts.deb import DebPackages

from labhub.config import CREDENTIALS_DIR
from labhub.ops.files import FileLines
from tasks.shares import FSTAB_MARKER, credentials_text, fstab_line


def needs_shares(target):
    if not target.config.shares:
        pytest.skip(f"{target.name} has no shares in its data")


def test_cifs_utils_is_installed(target):
    needs_shares(target)
    assert "cifs-utils" in target.fact(DebPackages), "package cifs-utils: expected installed, found not installed"


def test_credentials_files_are_root_only_and_current(target):
    needs_shares(target)
    directory = target.path(CREDENTIALS_DIR)
    assert directory, f"{CREDENTIALS_DIR}: expected present, found missing"
    found = (directory["owner"], directory["group"], oct(directory["mode"]))
    assert found == ("root", "root", "0o700"), f"{CREDENTIALS_DIR}: expected root:root 0700, found {found}"
    for share in target.config.shares:
        path = share.credentials_path
        file = target.path(path)
        assert file, f"{path}: expected present, found missing"
        found = (file["owner"], file["group"], oct(file["mode"]))
        assert found == ("root", "root", "0o600"), f"{path}: expected root:root 0600, found {found}"
        expected = hashlib.sha256(credentials_text(share).encode()).hexdigest()
        assert file.get("sha256") == expected, f"{path}: content differs from the share's current credentials (not shown)"


def test_fstab_holds_one_line_per_share_and_no_secret(target):
    fstab = target.fact(FileLines, path="/etc/fstab") or []
    begin, end = f"# BEGIN {FSTAB_MARKER}", f"# END {FSTAB_MARKER}"
    expected = [begin, *[fstab_line(share) for share in target.config.shares], end] if target.config.shares else []
    found = fstab[fstab.index(begin) : fstab.index(end) + 1] if begin in fstab and end in fstab else []
    assert found == expected, f"/etc/fstab share lines: expected {expected}, found {found}"
    assert fstab.count(begin) <= 1, "/etc/fstab: expected one block of share lines, found several"
    leaky = [n for n, line in enumerate(fstab, 1) if "password=" in line or "pass=" in line]
    assert not leaky, f"/etc/fstab: expected no password, found one on line(s) {leaky}"


def test_no_leftovers_of_removed_shares(target):
    listing = [path.rsplit("/", 1)[1] for path in target.listing(CREDENTIALS_DIR)]
    expected = {share.name for share in target.config.shares}
    leftovers = sorted({name.removesuffix(".mounted") for name in listing} - expected)
    assert not leftovers, f"{CREDENTIALS_DIR}: expected only {sorted(expected)}, found leftovers of {leftovers}"


def test_shares_are_mounted_as_data_says(target):
    needs_shares(target)
    if not target.config.mount_shares:
        pytest.skip(f"{target.name} does not mount its shares (mount_shares: False)")
    for share in target.config.shares:
        mount = target.host.mount_point(share.mount_point)
        assert mount.exists, f"{share.mount_point}: expected {share.source} mounted, found nothing mounted"
        found = (mount.device, mount.filesystem, "ro" if "ro" in mount.options else "rw")
        expected = (share.source, "cifs", "ro" if share.read_only else "rw")
        assert found == expected, f"{share.mount_point}: expected {expected}, found {found}"
