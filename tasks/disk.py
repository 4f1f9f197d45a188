"""Disk space: members' homes and research groups' folders under kernel-enforced project
quotas (XFS mounted with prjquota), on the disk /home is on or on a dedicated empty disk
labhub formats and moves the homes onto. Whether the filesystems can do it is found out while
the run is planned: a host that cannot stops before anything is changed there, with the
steps that fix it. (A member's /tmp and server layer: files/jupyterhub_config.py.)"""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import DeployError, deploy

from labhub.config.disk import GROUP_PROJECT_BASE, HOMES, quota_of, quotas_on, size_bytes
from labhub.inventory import host_config
from labhub.ops import apt, quotas as quota_ops


def group_folders(config) -> list[str]:
    """The research groups' folders on this host (the homes' the disk fact finds by itself)."""
    return [g.path for g in config.groups if config.share_of(g) is None]


def quota_directories(config) -> list[quota_ops.QuotaDirectory]:
    """Every member's home and every group folder on this host; with no quota, a limit of 0 (none)."""
    def kib(size):
        return size_bytes(size) // 1024 if size else 0

    homes = [quota_ops.QuotaDirectory(f"{HOMES}/{user.account}", kib(quota_of(config, user)), "owner") for user in config.users]
    folders = [quota_ops.QuotaDirectory(g.path, kib(g.quota), str(GROUP_PROJECT_BASE)) for g in config.groups if config.share_of(g) is None]
    return homes + folders


def how_to_fix(filesystem: dict) -> str:
    target, fstype, source = filesystem.get("target", "?"), filesystem.get("fstype", "?"), filesystem.get("source", "?")
    if fstype == "xfs" and target == "/":
        return ("add rootflags=pquota to GRUB_CMDLINE_LINUX in /etc/default/grub, run update-grub and reboot "
                "(XFS turns quotas on only when it is mounted); or give hub.homes_device an empty disk")
    if fstype == "xfs":
        return f"add prjquota to the options of {target} in /etc/fstab, then unmount and mount it (or reboot); or give hub.homes_device an empty disk"
    return (f"labhub's quotas need XFS: give hub.homes_device an empty disk or logical volume (it is formatted as XFS and the "
            f"homes are moved onto it), or put {target} on XFS mounted with prjquota ({source} is {fstype})")


def check_filesystems(config, state: dict) -> None:
    for directory in quota_directories(config):
        if not directory.limit_kib or (config.hub.homes_device and directory.path.startswith(HOMES + "/")):
            continue
        filesystem = quota_ops.filesystem_of(state, directory.path)
        if not quota_ops.has_project_quotas(filesystem):
            raise DeployError(
                f"host '{host.name}': {directory.path} needs a quota, but its filesystem ({filesystem.get('source', '?')} on "
                f"{filesystem.get('target', '?')}, {filesystem.get('fstype', '?')}, options {filesystem.get('options', '?')}) "
                f"has no project quotas. Nothing was changed. To fix it: {how_to_fix(filesystem)}"
            )


def check_device(config, state: dict) -> None:
    device, found = config.hub.homes_device, state["device"]
    if not found["block"]:
        raise DeployError(f"host '{host.name}': hub.homes_device {device} is not a block device there (see lsblk); nothing was changed")
    contents = quota_ops.homes_device_contents(found)
    if contents is not None and state["homes_source"] != found["path"]:
        raise DeployError(
            f"host '{host.name}': hub.homes_device {device} holds {contents}; labhub formats only an empty device, and nothing "
            f"was changed. Name an empty disk, or, if nothing on it is needed any more, empty it yourself (wipefs -a {device})"
        )


@deploy("Disk")
def homes_disk():
    """Before the accounts: the homes' disk, so that new homes are made on it."""
    config = host_config(host)
    if not quotas_on(config) and config.hub.homes_device is None:
        return
    state = quota_ops.read(group_folders(config), config.hub.homes_device)
    if config.hub.homes_device:
        check_device(config, state)
    check_filesystems(config, state)
    apt.packages(name="xfsprogs", install=["xfsprogs"], settings=config.apt)
    if config.hub.homes_device:
        quota_ops.homes_on_device(name="homes on their own disk (XFS, project quotas)", device=config.hub.homes_device, state=state)


@deploy("Disk")
def quotas():
    """After the accounts and group folders: each home and folder its project and limit."""
    config = host_config(host)
    if not quotas_on(config):
        return
    directories = quota_directories(config)
    state = quota_ops.read(group_folders(config), config.hub.homes_device)
    quota_ops.project_quotas(name="project quotas of homes and group folders", directories=directories, state=state)
