"""What tasks/lab_page.py promises, on a host whose lab page is on (LabHost.lab_page_on): the
helper's script and units as data says, its socket listening and root-only, the page's token
file root-only. The page's container, files, limits and route are the stack's (test_hub.py)."""

import hashlib

from labhub.ops.compose import EnvKeys
from labhub.ops.systemd import ServiceState
from tasks.hub import LAB_SECRETS
from tasks.lab_page import SOCKET, SOCKET_UNIT, helper_files


def test_the_lab_pages_helper_is_what_data_says_and_listens_root_only(target):
    if not target.config.lab_page_on:
        return  # no lab page on this host (hub.lab_page, or neither backups nor quotas)
    for file in helper_files(target.config, target.name):
        found = target.path(file.path)
        assert found, f"{file.path}: expected present, found missing"
        assert found.get("sha256") == hashlib.sha256(file.data).hexdigest(), f"{file.path}: content differs from what data says"
    unit = target.fact(ServiceState, unit=SOCKET_UNIT)
    assert (unit["enabled"], unit["active"]) == ("enabled", "active"), f"{SOCKET_UNIT}: expected enabled and active, found {unit['enabled'] or 'missing'} and {unit['active']}"
    socket = target.run(f"stat -c '%U %a %F' {SOCKET}").stdout.strip()
    assert socket == "root 600 socket", f"{SOCKET}: expected a socket, root 0600, found {socket or 'none'}"
    path = f"{target.config.hub.stack_dir}/lab.env"
    found = target.path(path)
    assert found and (found["owner"], oct(found["mode"])) == ("root", "0o600"), f"{path}: expected root 0600, found {found and (found['owner'], oct(found['mode']))}"
    assert set(LAB_SECRETS) <= target.fact(EnvKeys, path=path), f"{path}: expected {sorted(LAB_SECRETS)}"
