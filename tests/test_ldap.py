"""Directory logins for real: a hub test host of its own authenticates the lab's members against
OpenLDAP's slapd (in a container beside it, StartTLS under the test's own CA), through a
service account whose password is a secret; only members in data and in the allowed group
get in, and a directory that cannot be reached is a clear error while the hub keeps running."""

from __future__ import annotations

import re
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import pytest

from labhub.secrets import secrets_file
from tests.harness import cli
from tests.harness.hosts import TestHost, write_inventory
from tests.harness.hubclient import HubUser
from tests.harness.hublab import SHARE_CREDENTIALS, hub_data
from tests.harness.lab import write_secrets
from tests.harness.ldaplab import GROUP_DN, PEOPLE, SERVICE_DN, Directory, slapd
from tests.harness.tlslab import session_ca

pytestmark = [pytest.mark.host, pytest.mark.hub, pytest.mark.ldap]

BIND_PASSWORD = "Ldap-Service-Canary-31!"
DOWN_PORT = 3899  # on the directory's address, where nothing listens: a replica that is down


@dataclass
class LdapLab:
    host: TestHost
    inventory: Path
    url: str
    directory: Directory

    def hub_log(self) -> str:
        return self.host.exec("docker logs --tail 40 jupyterhub-hub-1 2>&1", check=False).stdout


@pytest.fixture(scope="module")
def ldap_lab(own_hub_lab):
    """A copy of the run's converged hub host, switched to directory logins (a re-converge,
    not a fresh host: about 3 minutes less)."""
    with slapd(session_ca(), BIND_PASSWORD) as directory:
        data = hub_data()
        data["users"] = [*data["users"], "dave"]  # dave is in the directory, not in the group
        data["hub"]["authenticator"] = "ldap"
        # The first server is a replica that is down (nothing listens there): every login and
        # the deploy's read of the group go on to the fallback.
        data["hub"]["ldap"] = {"server_url": f"{directory.url}:{DOWN_PORT}", "fallback_urls": [directory.url],
                               "search_base": "ou=people,dc=lab,dc=test", "search_bind_dn": SERVICE_DN, "allowed_groups": [GROUP_DN],
                               "admit_group_members": True}
        inventory = write_inventory(own_hub_lab.inventory, [(own_hub_lab.host, data)])
        write_secrets(inventory, SHARE_CREDENTIALS)
        with secrets_file(inventory).open("a") as secrets:
            secrets.write(f'\n[ldap]\nbind_password = "{BIND_PASSWORD}"\n')
        started = time.monotonic()
        cli.converge(inventory)
        print(f"ldap: converge of the hub host to directory logins: {time.monotonic() - started:.0f} s")
        yield LdapLab(own_hub_lab.host, inventory, own_hub_lab.url, directory)


def login_answer(lab: LdapLab, name: str, password: str) -> tuple[int, str]:
    user = HubUser(lab.url)
    status, page = user.request("GET", "/hub/login")
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page).group(1)
    form = urllib.parse.urlencode({"username": name, "password": password, "_xsrf": xsrf}).encode()
    return user.request("POST", "/hub/login?next=%2Fhub%2Fhome", form, {"Content-Type": "application/x-www-form-urlencoded"})


def test_a_listed_member_in_the_group_logs_in_with_her_directory_password(ldap_lab):
    """Through the fallback server: the first one (DOWN_PORT) refuses connections."""
    alice = HubUser(ldap_lab.url)
    assert alice.login("alice", PEOPLE["alice"][0]), ldap_lab.hub_log()
    assert alice.whoami() == "alice"


def test_a_group_member_not_in_data_is_admitted_with_her_uidnumber_as_uid(ldap_lab):
    """erin is a physicist in the directory only: the deploy read the group and made her account."""
    assert ldap_lab.host.exec("id -u jupyter-erin").stdout.strip() == str(PEOPLE["erin"][1])
    erin = HubUser(ldap_lab.url)
    assert erin.login("erin", PEOPLE["erin"][0]), ldap_lab.hub_log()
    erin.create_token("erin")
    erin.start_server("erin")
    assert erin.write("erin", "home/jupyter-erin/notes.txt", "mine")[0] == 201
    assert ldap_lab.host.exec("stat -c %u /home/jupyter-erin/notes.txt").stdout.strip() == str(PEOPLE["erin"][1])
    assert erin.api("DELETE", "/hub/api/users/erin/server")[0] in (202, 204)


def test_a_directory_the_deploy_cannot_read_is_a_clear_error_before_any_host_is_touched(ldap_lab):
    ldap_lab.directory.stop()
    try:
        run = cli.pyinfra(ldap_lab.inventory, "-y", "deploy.py")
    finally:
        ldap_lab.directory.start()
    assert run.returncode != 0
    where = f"{ldap_lab.directory.url}:{DOWN_PORT}, {ldap_lab.directory.url}"
    assert f"hub.ldap.admit_group_members: the directory {where} could not be read from this machine" in run.output, run.explain()
    assert "no host was contacted" in run.output and BIND_PASSWORD not in run.output


def test_a_wrong_password_is_refused(ldap_lab):
    assert not HubUser(ldap_lab.url).login("alice", "not-her-password")
    status, page = login_answer(ldap_lab, "bob", PEOPLE["alice"][0])
    assert status == 403 and "Invalid username or password" in page


def test_a_directory_user_outside_the_allowed_group_is_refused(ldap_lab):
    assert not HubUser(ldap_lab.url).login("dave", PEOPLE["dave"][0])  # listed in data, right password, not a physicist
    assert HubUser(ldap_lab.url).login("bob", PEOPLE["bob"][0])  # the same data, in the group: in


def test_a_directory_that_cannot_be_reached_is_a_clear_error_and_the_hub_keeps_running(ldap_lab):
    ldap_lab.directory.stop()
    try:
        status, page = login_answer(ldap_lab, "alice", PEOPLE["alice"][0])
        assert status == 503, page[-500:]
        assert "directory (LDAP) cannot be reached" in page
        assert HubUser(ldap_lab.url).request("GET", "/hub/health")[0] == 200
    finally:
        ldap_lab.directory.start()
    assert HubUser(ldap_lab.url).login("alice", PEOPLE["alice"][0])  # back as soon as the directory is


def test_the_bind_password_is_root_only_on_the_host_and_never_printed(ldap_lab):
    shown = cli.pyinfra(ldap_lab.inventory, "-y", "-vvv", "--debug", "--diff", "deploy.py")
    assert shown.returncode == 0, shown.explain()
    assert BIND_PASSWORD not in shown.output
    planned = cli.pyinfra(ldap_lab.inventory, "--dry", "--json", "deploy.py")
    assert BIND_PASSWORD not in planned.output
    stat = ldap_lab.host.exec("stat -c '%U %a' /opt/jupyterhub/ldap /opt/jupyterhub/ldap/bind-password").stdout.split()
    assert stat == ["root", "700", "root", "600"]
    holders = ldap_lab.host.exec(f"grep -rlF -- '{BIND_PASSWORD}' /opt /etc /var/log 2>/dev/null || true").stdout.split()
    assert holders == ["/opt/jupyterhub/ldap/bind-password"]
    assert BIND_PASSWORD not in ldap_lab.host.exec("journalctl --no-pager -o cat; docker logs jupyterhub-hub-1 2>&1").stdout


def test_host_checks_pass_and_a_second_run_changes_nothing(ldap_lab):
    checks = cli.host_checks(ldap_lab.inventory)
    assert checks.returncode == 0, checks.explain()
    assert BIND_PASSWORD not in checks.output
    assert cli.changed_operations(cli.converge(ldap_lab.inventory)) == {}
