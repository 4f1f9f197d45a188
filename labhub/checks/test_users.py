"""What tasks/users.py promises: `docker` holds exactly the admins; every lab member has a
jupyter-<name> account as data says, outside every root-equivalent group, with a locked host
password; departed members' accounts are locked and keep their homes."""

from labhub.config import JUPYTER_PREFIX, PRIVILEGED_GROUPS
from labhub.ops.accounts import LOCKED_SHELL, Accounts


def test_docker_group_is_exactly_the_admins(target):
    groups = target.fact(Accounts)["groups"]
    assert "docker" in groups, "group docker: expected present, found missing"
    expected = sorted(admin.name for admin in target.config.admins)
    found = sorted(groups["docker"]["members"])
    assert found == expected, f"group docker (root-equivalent): expected members {expected}, found {found}"


def test_admin_accounts_exist(target):
    passwd = target.fact(Accounts)["users"]
    for admin in target.config.admins:
        assert admin.name in passwd, f"admin account {admin.name}: expected present, found missing"
        if admin.uid:
            assert passwd[admin.name]["uid"] == admin.uid, f"admin {admin.name}: expected UID {admin.uid}, found {passwd[admin.name]['uid']}"


def test_hub_user_accounts_match_data(target):
    accounts = target.fact(Accounts)
    passwd, gid_names = accounts["users"], {g["gid"]: name for name, g in accounts["groups"].items()}
    for user in target.config.users:
        account = passwd.get(user.account)
        assert account, f"account {user.account}: expected present, found missing"
        found = {
            "uid": account["uid"] if user.uid else None,
            "group": gid_names.get(account["gid"], account["gid"]),
            "shell": account["shell"],
            "home": account["home"] in accounts["homes"],
            "password locked": account.get("password_locked"),
            "expires": account.get("expire") or None,
        }
        expected = {"uid": user.uid, "group": user.group, "shell": user.shell, "home": True, "password locked": True, "expires": None}
        assert found == expected, f"account {user.account}: expected {expected}, found {found}"


def test_hub_users_hold_no_root_equivalent_group(target):
    groups = target.fact(Accounts)["groups"]
    found = {
        group: [m for m in groups[group]["members"] if m.startswith(JUPYTER_PREFIX)]
        for group in PRIVILEGED_GROUPS
        if group in groups
    }
    found = {group: members for group, members in found.items() if members}
    assert not found, f"jupyter-* accounts in root-equivalent groups: expected none, found {found}"


def test_departed_users_are_locked_and_keep_their_home(target):
    accounts = target.fact(Accounts)
    listed = {user.account for user in target.config.users}
    for name, account in accounts["users"].items():
        if not name.startswith(JUPYTER_PREFIX) or name in listed or account["uid"] < 1000:
            continue
        found = {
            "password locked": account.get("password_locked"),
            "expires": account.get("expire"),
            "shell": account["shell"],
            "home kept": account["home"] in accounts["homes"],
        }
        expected = {"password locked": True, "expires": "1", "shell": LOCKED_SHELL, "home kept": True}
        assert found == expected, f"departed account {name}: expected locked {expected}, found {found}"
