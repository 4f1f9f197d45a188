"""A server whose SSH host key changed since the last run: one message that says so.

paramiko refuses the connection and pyinfra stops for that host (it never accepts a changed
key), but its warning speaks only of an attack. Re-provisioning after a reinstall meets this on
every server, and the sysadmin needs to know that this is expected then, what to check and
what to run. config.py installs `explain_changed_host_keys()` before pyinfra connects; this
filter replaces pyinfra's four warning lines with labhub's message. pyinfra's error after it
("SSH host key error ... does not match") still names the host.
"""

from __future__ import annotations

import logging
import shlex

PYINFRA_WARNINGS = ("WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED", "Someone could be eavesdropping", "If this is expected")
REMOVE_COMMAND = "ssh-keygen -R "


def inventory_host(address: str, port: str) -> tuple[str | None, str | None]:
    """The server's name in the inventory, and the known_hosts file it names (ssh_known_hosts_file)."""
    from pyinfra.context import ctx_state

    try:
        hosts = list(ctx_state.get().inventory)
    except Exception:  # no pyinfra state: the default file
        return None, None
    for host in hosts:
        data = host.data
        if (data.get("ssh_hostname") or host.name) == address and str(data.get("ssh_port") or 22) == (port or "22"):
            return host.name, data.get("ssh_known_hosts_file")
    return None, None


def changed_key_message(entry: str) -> str:
    address, _, port = entry.strip("[").partition("]:")  # "[host]:port", or "host" for port 22
    name, known_hosts = inventory_host(address, port)
    remove = f"ssh-keygen -R {shlex.quote(entry)}" + (f" -f {shlex.quote(known_hosts)}" if known_hosts else "")
    scan = f"ssh-keyscan {'-p ' + port + ' ' if port else ''}{shlex.quote(address)} 2>/dev/null | ssh-keygen -lf -"
    return (
        f"{name + ' (' + entry + ')' if name and name != entry else entry}: the server's SSH host key has changed since labhub last connected; labhub stops for this server "
        "and changes nothing on it.\n"
        "    This is expected after the server was reinstalled: a new system has new host keys. If it was not "
        "reinstalled, someone may be between you and it: do not go on.\n"
        f"    Check the new key first: the fingerprint it offers now ({scan}) must be the one its console shows "
        "(ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub).\n"
        f"    Then remove the old key and run labhub again:  {remove}"
    )


class ChangedHostKey(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage().strip()
        if message.startswith(PYINFRA_WARNINGS):
            return False
        if message.startswith(REMOVE_COMMAND):
            record.msg, record.args = changed_key_message(message[len(REMOVE_COMMAND):].strip()), ()
        return True


def explain_changed_host_keys() -> None:
    """Installed once, from config.py (pyinfra logs the changed key on its own logger)."""
    logger = logging.getLogger("pyinfra")
    if not any(isinstance(existing, ChangedHostKey) for existing in logger.filters):
        logger.addFilter(ChangedHostKey())
