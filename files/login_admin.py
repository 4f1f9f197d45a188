"""A lab's logins, for its sysadmin: run in the hub's container, e.g.

    docker exec -i jupyterhub-hub-1 python3 /srv/jupyterhub/login_admin.py setup-code alice

- set-password (firstuse): a member's new password, read from standard input (never a
  command line); her files, servers and groups stay;
- setup-code (firstuse): a one-time code for each member's first login (none named: every
  member who has not logged in yet); --reset first removes the password of a member whose
  account somebody else claimed;
- approve (native): approve a member's sign-up after checking with her.
"""

from __future__ import annotations

import argparse
import dbm
import json
import sqlite3
import sys
import time

import bcrypt

sys.path.insert(0, "/srv/jupyterhub")  # login_guard.py, beside this file
from login_guard import DATA, SetupCodes  # noqa: E402


def set_password(name: str, password: str, dbm_path: str = f"{DATA}/passwords.dbm", min_length: int = 8) -> None:
    """A sysadmin resets a member's FirstUse password (forgotten, or claimed by someone else):
    her files, servers and groups stay; only the stored hash changes."""
    if len(password) < min_length:
        raise SystemExit(f"the password must have at least {min_length} characters")
    with dbm.open(dbm_path, "c", 0o600) as db:
        db[name] = bcrypt.hashpw(password.encode("utf8"), bcrypt.gensalt())


def setup_code_command(names: list[str], settings: dict, reset: bool, dbm_path: str = f"{DATA}/passwords.dbm") -> None:
    """Print a setup code for each member named (all who have not claimed theirs, for none);
    --reset first removes the password of a member whose claim was stolen."""
    with dbm.open(dbm_path, "c", 0o600) as db:
        claimed = {key.decode() for key in db.keys()}
        if reset:
            for name in names:
                db.pop(name, None)
                claimed.discard(name)
    taken = sorted(set(names) & claimed)
    if taken:
        raise SystemExit(f"{', '.join(taken)}: already logged in and set a password; 'set-password' sets a new one, "
                         "'setup-code --reset' removes it (a claim somebody else made) and gives a new code")
    codes, days = SetupCodes(), settings["login"]["setup_code_days"]
    for name in names or sorted({user["name"] for user in settings["users"]} - claimed):
        code, ends = codes.issue(name, days)
        print(f"{name}  {code}  until {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(ends))}")


def approve_command(name: str) -> None:
    """Native sign-ups of members wait for approval when setup codes are on: the sysadmin
    approves one after checking with her (as an admin does on /hub/authorize)."""
    with sqlite3.connect(f"{DATA}/jupyterhub.sqlite") as database:
        if not database.execute("UPDATE users_info SET is_authorized = 1 WHERE username = ?", (name,)).rowcount:
            raise SystemExit(f"{name!r} has not signed up yet (at /hub/signup)")
    print(f"{name} is approved: she logs in with the password she signed up with")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="login_admin.py", description="A lab's logins, for its sysadmin (run in the hub's container)")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("set-password", help="firstuse: set a member's password, read from standard input").add_argument("member")
    issue = commands.add_parser("setup-code", help="firstuse: a one-time code for each member's first login (none named: all who have not logged in)")
    issue.add_argument("members", nargs="*")
    issue.add_argument("--reset", action="store_true", help="remove the member's password first (somebody else claimed her account)")
    commands.add_parser("approve", help="native: approve a member's sign-up").add_argument("member")
    arguments = parser.parse_args()
    with open("/srv/jupyterhub/labhub.json") as settings_file:
        settings = json.load(settings_file)
    wanted = {"set-password": "firstuse", "setup-code": "firstuse", "approve": "native"}[arguments.command]
    if settings["authenticator"] != wanted:
        raise SystemExit(f"hub.authenticator is {settings['authenticator']!r}: {arguments.command} is for {wanted!r} (see docs/logins.md)")
    members = {user["name"] for user in settings["users"]}
    named = [name.lower() for name in (arguments.members if arguments.command == "setup-code" else [arguments.member])]
    for name in named:
        if name not in members:
            raise SystemExit(f"{name!r} is not a member of this lab (labhub.json)")
    if arguments.command == "set-password":
        set_password(named[0], sys.stdin.readline().rstrip("\n"), min_length=settings["min_password_length"])
        print(f"{named[0]}'s password is set; her files, servers and groups are unchanged")
    elif arguments.command == "setup-code":
        setup_code_command(named, settings, arguments.reset)
    else:
        approve_command(named[0])
