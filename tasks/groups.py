"""Research groups: each has a host group `lab-<name>` of exactly its members' jupyter-*
accounts and a folder: on the host, root:lab-<name> mode 2770 (setgid: what members create
there belongs to the group; nobody else can look in), mounted into its members' servers only;
or on a share (after the shares are mounted), made if missing, the file server's permissions
applying, and covered in other members' servers (files/jupyterhub_config.py). A group removed
from data keeps its host group and folder."""

from pyinfra import host
from pyinfra.api import deploy

from labhub.config.groups import GROUP_FOLDER_MODE, GROUP_FOLDERS
from labhub.inventory import host_config
from labhub.ops import accounts, files


@deploy("Groups")
def folders():
    config = host_config(host)
    if not config.groups:
        return
    accounts.lab_groups(name="host groups of exactly their members", groups=config.groups)
    on_host = [g for g in config.groups if config.share_of(g) is None]
    parents = sorted({GROUP_FOLDERS} if any(g.folder is None for g in on_host) else set())
    if on_host:
        files.managed(
            name="group folders (setgid, 2770)",
            directories=[
                *[files.ManagedDirectory(parent) for parent in parents],
                *[files.ManagedDirectory(g.path, mode=GROUP_FOLDER_MODE, group=g.host_group) for g in on_host],
            ],
        )
    on_shares = [(g.path, share.mount_point) for g in config.groups if (share := config.share_of(g)) is not None]
    if on_shares:
        files.directories_on_mounts(name="group folders on shares", directories=on_shares)
