"""CIFS shares of the institute's file server: cifs-utils, one root-only credentials file per
share (the password never goes in /etc/fstab or a command line), one fstab line per share,
each share mounted now and remounted when its line or password changes. A share removed
from data is unmounted and its fstab line and credentials file are removed."""

from __future__ import annotations

import hashlib

from pyinfra import host
from pyinfra.api import deploy

from labhub.config import CREDENTIALS_DIR, Share
from labhub.inventory import host_config
from labhub.ops import apt, cifs as cifs_ops, files

FSTAB_MARKER = "labhub CIFS shares, managed by tasks/shares.py: edits here are reverted"
MOUNT_TIMEOUT = "x-systemd.mount-timeout=30s"  # a missing server costs boot at most this


def fstab_source(share: Share) -> str:
    """//server/share as fstab and /proc/self/mounts write it (a space is \\040)."""
    return share.source.replace(" ", "\\040")


def fstab_line(share: Share) -> str:
    options = [f"credentials={share.credentials_path}"]
    if share.smb_version != "default":
        options.append(f"vers={share.smb_version}")
    options += [
        f"uid={share.uid}",
        f"gid={share.gid}",
        f"file_mode={share.file_mode}",
        f"dir_mode={share.dir_mode}",
        "ro" if share.read_only else "rw",
        "_netdev",  # network file system: mounted once the network is up
        "nofail",  # boot goes on when the server is away
        MOUNT_TIMEOUT,
        *share.options,
    ]
    return f"{fstab_source(share)} {share.mount_point} cifs {','.join(options)} 0 0"


def credentials_text(share: Share) -> str:
    lines = [f"username={share.credentials.username}", f"password={share.credentials.password.get_secret_value()}"]
    if share.domain:
        lines.append(f"domain={share.domain}")
    return "\n".join(lines) + "\n"


def mount_of(share: Share) -> cifs_ops.CifsMount:
    def sha256(text: str) -> str:
        return hashlib.sha256(text.encode()).hexdigest()

    line_digest = sha256(fstab_line(share))
    return cifs_ops.CifsMount(
        name=share.name,
        source=fstab_source(share),
        mount_point=share.mount_point,
        read_only=share.read_only,
        stamp=f"{sha256(credentials_text(share))} {line_digest} {share.mount_point}",
        line_digest=line_digest,
    )


@deploy("Shares")
def cifs():
    config = host_config(host)
    shares = config.shares
    if shares:
        apt.packages(name="cifs-utils", install=["cifs-utils"], settings=config.apt)
        files.managed(
            name="Credentials files and mount points",
            directories=[
                files.ManagedDirectory("/etc/labhub"),
                files.ManagedDirectory(CREDENTIALS_DIR, mode=0o700),
                *[files.ManagedDirectory(share.mount_point, exists_only=True) for share in shares],
            ],
            files=[files.ManagedFile(share.credentials_path, credentials_text(share), mode=0o600, secret=True) for share in shares],
        )
    fstab = files.block(
        name="fstab lines of the shares",
        path="/etc/fstab",
        lines=[fstab_line(share) for share in shares],
        marker=FSTAB_MARKER,
    )
    cifs_ops.mounts(
        name="Shares mounted as fstab says",
        mounts=[mount_of(share) for share in shares],
        mount_now=config.mount_shares,
        reload_when=[fstab],
    )
