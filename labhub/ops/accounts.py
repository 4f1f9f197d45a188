"""Host accounts: the lab's admins, the jupyter-* accounts of its members, the root-equivalent
`docker` group and the research groups' host groups, from one read of the account databases."""

from __future__ import annotations

from collections.abc import Sequence

from pyinfra.api import FactBase, OperationError, operation

from labhub.config import JUPYTER_PREFIX, PRIVILEGED_GROUPS, Admin, HubUser
from labhub.config.groups import LabGroup
from labhub.ops import facts
from labhub.ops.shell import q, script

LOCKED_SHELL = "/usr/sbin/nologin"


class Accounts(FactBase):
    """passwd and group databases, the lock state and expiry of every account (never a
    password hash), and which home directories exist."""

    def command(self) -> str:
        return (
            "getent passwd; echo '%group'; getent group; echo '%shadow'; "
            "getent shadow | awk -F: '{print $1 \":\" substr($2,1,1) \":\" $8}'; echo '%homes'; "
            "getent passwd | cut -d: -f6 | while read -r h; do [ -d \"$h\" ] && echo \"$h\"; done; true"
        )

    def process(self, output):
        section = "passwd"
        users: dict[str, dict] = {}
        groups: dict[str, dict] = {}
        homes: set[str] = set()
        for line in output:
            if line.startswith("%"):
                section = line[1:]
                continue
            fields = line.split(":")
            if section == "passwd" and len(fields) >= 7:
                users[fields[0]] = {"uid": int(fields[2]), "gid": int(fields[3]), "home": fields[5], "shell": fields[6]}
            elif section == "group" and len(fields) >= 4:
                groups[fields[0]] = {"gid": int(fields[2]), "members": [m for m in fields[3].split(",") if m]}
            elif section == "shadow" and len(fields) == 3 and fields[0] in users:
                users[fields[0]].update(password_locked=fields[1] == "!", expire=fields[2])
            elif section == "homes":
                homes.add(line)
        return {"users": users, "groups": groups, "homes": homes}


@operation()
def lab_accounts(admins: Sequence[Admin], users: Sequence[HubUser], create_homes: bool = True):
    """Admin accounts, jupyter-* accounts and the docker group, from one read of the account
    databases. A jupyter-* account no longer in data is locked (password, expiry, shell),
    never deleted; its home stays. Without create_homes (a swarm worker) homes are not made:
    they are on storage the hub makes them on."""
    found = facts.get(Accounts)
    passwd, groups, homes = found["users"], found["groups"], found["homes"]
    owner_of_uid = {entry["uid"]: name for name, entry in passwd.items()}
    group_of_gid = {entry["gid"]: name for name, entry in groups.items()}
    steps: list[str] = []

    def check_uid_free(account: str, uid: int | None) -> None:
        holder = owner_of_uid.get(uid)
        if uid is not None and holder not in (None, account):
            raise OperationError(f"cannot give {account} UID {uid}: the host's account '{holder}' has it")

    for group in sorted({u.group for u in users} | {"docker"}):
        if group not in groups:
            steps.append(f"groupadd {'--system ' if group == 'docker' else ''}{q(group)}")

    for admin in admins:
        check_uid_free(admin.name, admin.uid)
        now = passwd.get(admin.name)
        if now is None:
            uid = f"--uid {admin.uid} " if admin.uid else ""
            steps.append(f"useradd {'--create-home' if create_homes else '--no-create-home'} --shell /bin/bash {uid}{q(admin.name)}")
        elif admin.uid and now["uid"] != admin.uid:
            steps.append(f"usermod --uid {admin.uid} {q(admin.name)}")

    for user in users:
        account = user.account
        check_uid_free(account, user.uid)
        now = passwd.get(account)
        if now is None:
            uid = f"--uid {user.uid} " if user.uid else ""
            steps.append(
                f"useradd {'--create-home' if create_homes else '--no-create-home'} --home-dir /home/{account} --gid {q(user.group)} --shell {q(user.shell)} "
                f"{uid}--comment {q('JupyterHub user ' + user.name)} {account}"
            )
            continue
        if now["uid"] < 1000:
            raise OperationError(f"{account} exists as a system account (UID {now['uid']}); not touching it")
        changes = []
        if user.uid and now["uid"] != user.uid:
            changes.append(f"--uid {user.uid}")
        if group_of_gid.get(now["gid"]) != user.group:
            changes.append(f"--gid {q(user.group)}")
        if now["shell"] != user.shell:
            changes.append(f"--shell {q(user.shell)}")
        if now.get("expire"):
            changes.append("--expiredate ''")
        if not now.get("password_locked"):
            changes.append("--lock")  # hub users log in through the hub, never with a host password
        if changes:
            steps.append(f"usermod {' '.join(changes)} {account}")
        if now["home"] not in homes and create_homes:
            steps.append(f"install -d -m 700 -o {account} -g {q(user.group)} {q(now['home'])}")

    wanted = {u.account for u in users}
    for account, now in sorted(passwd.items()):
        if account.startswith(JUPYTER_PREFIX) and account not in wanted and now["uid"] >= 1000:
            if not (now.get("password_locked") and now.get("expire") == "1" and now["shell"] == LOCKED_SHELL):
                steps.append(f"usermod --lock --expiredate 1 --shell {LOCKED_SHELL} {account}")

    for group in PRIVILEGED_GROUPS:
        for member in groups.get(group, {}).get("members", []):
            if member.startswith(JUPYTER_PREFIX) and group != "docker":
                steps.append(f"gpasswd --delete {q(member)} {group} >/dev/null")

    admin_names = sorted(a.name for a in admins)
    if sorted(groups.get("docker", {}).get("members", [])) != admin_names:
        steps.append(f"gpasswd --members {q(','.join(admin_names))} docker")

    if steps:
        yield script(steps)


@operation()
def lab_groups(groups: Sequence[LabGroup]):
    """The host group of each research group (lab-<name>, its GID where data fixes one) with
    exactly its members' jupyter-* accounts, from the same read of the account databases."""
    existing = facts.get(Accounts)["groups"]
    group_of_gid = {entry["gid"]: name for name, entry in existing.items()}
    steps: list[str] = []
    for group in groups:
        name, now = group.host_group, existing.get(group.host_group)
        holder = group_of_gid.get(group.gid)
        if group.gid is not None and holder not in (None, name):
            raise OperationError(f"cannot give group {name} GID {group.gid}: the host's group '{holder}' has it")
        if now is None:
            steps.append(f"groupadd {f'--gid {group.gid} ' if group.gid else ''}{name}")
        elif group.gid is not None and now["gid"] != group.gid:
            steps.append(f"groupmod --gid {group.gid} {name}")
        members = sorted(JUPYTER_PREFIX + member for member in group.members)
        if sorted(now["members"] if now else []) != members:
            steps.append(f"gpasswd --members {q(','.join(members))} {name}")
    if steps:
        yield script(steps)
