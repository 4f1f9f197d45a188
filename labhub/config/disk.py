"""Disk space: kernel-enforced quotas on the members' homes and the research groups' folders
(project quotas: one project per directory, so a member's whole home counts, whoever owns
its files), and the dedicated disk the homes may live on."""

from __future__ import annotations

import re

from labhub.config.common import EntryError

SIZE = re.compile(r"[0-9]+(\.[0-9]+)?[KMGT]")
SIZE_RULE = "a size such as '500M', '20G' or '1.5T' (K, M, G, T: powers of 1024)"
DEVICE = re.compile(r"/dev/[A-Za-z0-9._/-]+")
HOMES = "/home"
# Project IDs: a home's is its owner's UID; a group folder's is this plus its group's GID,
# above any UID a lab hands out, so the two never share a project.
GROUP_PROJECT_BASE = 2_000_000_000


def check_size(size: str | None) -> str | None:
    if size is not None and not SIZE.fullmatch(size):
        raise ValueError(f"must be {SIZE_RULE}")
    if size is not None and size_bytes(size) < 1024 ** 2:
        raise ValueError("must be at least 1M")
    return size


def size_bytes(size: str) -> int:
    return int(float(size[:-1]) * 1024 ** ("KMGT".index(size[-1]) + 1))


def check_device(device: str | None) -> str | None:
    if device is not None and (not DEVICE.fullmatch(device) or ".." in device):
        raise ValueError("must be a block device or logical volume under /dev, such as /dev/sdb or /dev/vg0/homes")
    return device


def check_quotas(lab) -> None:
    """Quotas need homes and folders on this host's own disks, not on a share."""
    if not quotas_on(lab):
        return
    homes_share = next((s for s in lab.shares if s.homes), None)
    if homes_share is not None:
        raise ValueError(f"hub.home_quota: the homes are on share '{homes_share.name}', whose file server keeps its own quotas; "
                         "remove home_quota (and users' home_quota), or keep the homes on this host's disk")
    for index, group in enumerate(lab.groups):
        share = lab.share_of(group)
        if group.quota is not None and share is not None:
            raise EntryError(f"groups[{index}] ({group.name})", f"quota: its folder {group.path} is on share '{share.name}', whose "
                             "file server keeps its own quotas; remove quota, or give the group a folder on this host")


def quotas_on(lab) -> bool:
    return lab.hub.home_quota is not None or any(u.home_quota for u in lab.users) or any(g.quota for g in lab.groups)


def quota_of(lab, user) -> str | None:
    return user.home_quota or lab.hub.home_quota
