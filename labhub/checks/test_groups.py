"""What tasks/groups.py promises: each research group's host group holds exactly its
members, its folder is root:lab-<name> with mode 2770 (setgid), or is there on its share; and
the hub's part of it: a running server mounts the group folders of its user's groups and no
other, has the other groups' folders on shares covered, and runs only images its user's
groups allow."""

import json

import pytest

from labhub.checks.target import server_account
from labhub.config.groups import GROUP_FOLDER_MODE, GROUP_FOLDERS
from labhub.hub_settings import member_settings
from labhub.ops.accounts import Accounts
from tasks.hub import REGISTRY, plan


def groups_of(target):
    if not target.config.groups:
        pytest.skip(f"{target.name} has no research groups in data")
    return target.config.groups


def test_group_host_groups_hold_exactly_their_members(target):
    found_groups = target.fact(Accounts)["groups"]
    for group in groups_of(target):
        found = found_groups.get(group.host_group)
        assert found, f"host group {group.host_group}: expected present, found missing"
        expected = sorted(f"jupyter-{member}" for member in group.members)
        assert sorted(found["members"]) == expected, f"host group {group.host_group}: expected members {expected}, found {sorted(found['members'])}"
        if group.gid is not None:
            assert found["gid"] == group.gid, f"host group {group.host_group}: expected GID {group.gid}, found {found['gid']}"


def test_group_folders_are_setgid_and_only_their_groups(target):
    for group in groups_of(target):
        found = target.path(group.path)
        assert found and found["type"] == "directory", f"group folder {group.path}: expected a directory, found {found and found['type'] or 'missing'}"
        if target.config.share_of(group):
            continue  # on a share, the file server's permissions apply
        state = (found["owner"], found["group"], f"{found['mode']:o}")
        expected = ("root", group.host_group, f"{GROUP_FOLDER_MODE:o}")
        assert state == expected, f"group folder {group.path}: expected {':'.join(expected[:2])} {expected[2]}, found {':'.join(state[:2])} {state[2]}"


def test_servers_have_exactly_their_users_group_folders_and_images(target):
    """A member data moved out of a group keeps the folder in a running server until it
    restarts: this names that server."""
    if not target.config.hub.enabled:
        pytest.skip(f"{target.name} runs no hub (hub.enabled: False)")
    refs = {build.name: build.ref for build in plan(target.config).builds}
    users = {user.account: user.name for user in target.config.users}
    servers = target.run("docker ps --filter name=^jupyter- --format '{{.Names}}'").stdout.split()
    if not servers:
        return
    inspected = json.loads(target.run(f"docker inspect {' '.join(servers)}").stdout)
    folders = {group.path for group in target.config.groups}
    group_images = {image.name for group in target.config.groups for image in group.images}
    stale = []
    for server in inspected:
        account = server_account(server["Name"].lstrip("/"))
        if account not in users:
            continue  # test_hub's check names servers of unlisted accounts
        member = member_settings(target.config, users[account], refs)
        mounted = {m["Source"] for m in server["Mounts"] if m["Type"] == "bind"}
        # Any bind mount of a group folder, of a group in data or one data no longer has.
        group_mounts = {path for path in mounted if path in folders or path.startswith(GROUP_FOLDERS + "/")}
        covered = set((server["HostConfig"].get("Tmpfs") or {})) | {m["Destination"] for m in server["Mounts"] if m["Type"] == "tmpfs"}
        visible = [path for path in member["masked"] if path not in covered]
        if visible:
            stale.append(f"container {account}: expected the folders on shares of groups {users[account]} is not in covered, "
                         f"found {', '.join(visible)} visible: it is covered when the server restarts")
        extra = sorted(group_mounts - set(member["folders"]))
        if extra:
            stale.append(f"container {account}: expected the folders of {users[account]}'s groups only ({', '.join(member['folders']) or 'none'}), "
                         f"found {', '.join(extra)} mounted too: data no longer gives them that group, and it goes when the server restarts")
        repository = server["Config"]["Image"].removeprefix(REGISTRY + "/").rsplit(":", 1)[0]
        theirs = {ref.removeprefix(REGISTRY + "/").rsplit(":", 1)[0] for ref in member["images"].values()}
        if repository in group_images - theirs:
            stale.append(f"container {account}: expected an image of the lab or of {users[account]}'s groups, found {server['Config']['Image']}, "
                         "an image of a group they are not in")
    assert not stale, "; ".join(stale)

