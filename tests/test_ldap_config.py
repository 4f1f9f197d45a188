"""Directory login settings, checked before any host is touched, and what the hub is told:
no host needed."""

from __future__ import annotations

import pytest

from labhub.inventory import ConfigError, validate_host_data
from labhub.secrets import LDAP_PASSWORD_ENV
from labhub.hub_settings import hub_settings
from tasks.hub import plan

pytestmark = pytest.mark.quick

SEARCH = {"server_url": "ldaps://ldap.lab.example.org", "search_base": "ou=people,dc=lab,dc=org", "search_bind_dn": "cn=hub,dc=lab,dc=org"}
PASSWORD = "Ldap-Bind-Canary-77!"


def problems(ldap: dict) -> str:
    with pytest.raises(ConfigError) as error:
        validate_host_data("lab1", {"users": ["alice"], "hub": {"authenticator": "ldap", "ldap": ldap}})
    return str(error.value)


@pytest.mark.parametrize(
    "ldap, expected",
    [
        ({}, "set hub.ldap.server_url"),
        ({"server_url": "ldaps://ldap.lab.org"}, "set bind_dn_template"),
        ({"server_url": "http://ldap.lab.org", "bind_dn_template": ["uid={username},dc=lab"]}, "must be ldaps://host[:port] or ldap://"),
        ({"server_url": "ldaps://ldap.lab.org", "bind_dn_template": ["uid=alice,dc=lab"]}, "must be a DN with {username}"),
        ({"server_url": "ldap://ldap.lab.org", "start_tls": False, "bind_dn_template": ["uid={username},dc=lab"]}, "clear text"),
        ({"server_url": "ldaps://ldap.lab.org", "search_base": "ou=people,dc=lab"}, "needs search_bind_dn"),
        (SEARCH, "set LABHUB_LDAP_BIND_PASSWORD or [ldap] bind_password"),
        ({**SEARCH, "credentials": {"bind_password": PASSWORD}}, "never goes in host data"),
        ({**SEARCH, "allowed_groups": ["physicists"]}, "is not a group DN"),
        ({**SEARCH, "fallback_urls": ["ldap://ldap2.lab.org"]}, "every server must use server_url's scheme"),
        ({**SEARCH, "fallback_urls": ["ldap2.lab.org"]}, "'ldap2.lab.org': must be ldaps://host[:port]"),
        ({"server_url": "ldaps://ldap.lab.org", "bind_dn_template": ["uid={username},dc=lab"], "admit_group_members": True},
         "admit_group_members needs allowed_groups and a search"),
    ],
)
def test_incomplete_or_unsafe_directory_settings_are_refused(ldap, expected, monkeypatch):
    monkeypatch.delenv(LDAP_PASSWORD_ENV, raising=False)
    message = problems(ldap)
    assert expected in message and PASSWORD not in message


def test_the_bind_password_reaches_only_a_root_only_file(monkeypatch):
    monkeypatch.setenv(LDAP_PASSWORD_ENV, PASSWORD)
    config = validate_host_data("lab1", {"users": ["alice"], "hub": {"authenticator": "ldap", "ldap": {**SEARCH, "allowed_groups": ["cn=physicists,ou=groups,dc=lab,dc=org"]}}})
    stack = plan(config)
    assert [(f.path, f.mode, f.secret) for f in stack.hub_secret_files] == [("/opt/jupyterhub/ldap/bind-password", 0o600, True)]
    assert all(PASSWORD.encode() not in f.data for f in stack.files)  # compose.yaml, labhub.json, ...
    assert PASSWORD not in repr(config) and PASSWORD not in repr(stack)
    settings = hub_settings(config, {"notebook": "localhost:5000/notebook:abc123"})["ldap"]
    assert settings["server_address"] == "ldap.lab.example.org" and settings["server_port"] == 636 and settings["tls_strategy"] == "on_connect"
    assert settings["lookup_dn"] and settings["bind_password_file"] == "/srv/jupyterhub/ldap-bind-password"
    assert settings["servers"] == [["ldap.lab.example.org", 636]]


def test_fallback_servers_are_tried_in_order_after_the_first(monkeypatch):
    monkeypatch.setenv(LDAP_PASSWORD_ENV, PASSWORD)
    ldap = {**SEARCH, "fallback_urls": ["ldaps://ldap2.lab.example.org:1636", "ldaps://[2001:db8::7]"]}
    config = validate_host_data("lab1", {"users": ["alice"], "hub": {"authenticator": "ldap", "ldap": ldap}})
    settings = hub_settings(config, {"notebook": "localhost:5000/notebook:abc123"})["ldap"]
    assert settings["servers"] == [["ldap.lab.example.org", 636], ["ldap2.lab.example.org", 1636], ["2001:db8::7", 636]]



def test_a_bind_password_of_several_lines_is_refused_unshown(monkeypatch):
    monkeypatch.setenv(LDAP_PASSWORD_ENV, "first-line\nsecond-line")
    message = problems(SEARCH)
    assert "one non-empty line" in message and "first-line" not in message


GROUP = "cn=physicists,ou=groups,dc=lab,dc=org"


def admitted(found: dict, monkeypatch, users=("alice",)):
    """validate_host_data with admit_group_members, the directory answering `found`."""
    import labhub.directory

    monkeypatch.setenv(LDAP_PASSWORD_ENV, PASSWORD)
    monkeypatch.setattr(labhub.directory, "group_members", lambda config: found)
    return validate_host_data("lab1", {"users": list(users), "admins": [{"name": "labadmin", "uid": 5009}],
                                       "hub": {"authenticator": "ldap", "ldap": {**SEARCH, "allowed_groups": [GROUP], "admit_group_members": True}}})


def test_directory_group_members_become_members_with_their_uidnumber(monkeypatch):
    config = admitted({"alice": 5001, "erin": 5005}, monkeypatch)
    assert [(u.name, u.uid) for u in config.users] == [("alice", None), ("erin", 5005)], "data says who alice is; erin comes from the directory"


@pytest.mark.parametrize("found, expected", [
    ({"erin": 5009}, "directory member 'erin' has uidNumber 5009, which 'labadmin' in data has too"),
    ({"Erin Smith": 5005}, "directory member 'Erin Smith' (uidNumber 5005) cannot be a lab member"),
    ({"erin": 70000}, "UID must be between 1000 and 60000"),
])
def test_a_directory_member_who_cannot_be_a_member_is_a_clear_error(found, expected, monkeypatch):
    with pytest.raises(ConfigError) as error:
        admitted(found, monkeypatch)
    assert expected in str(error.value) and PASSWORD not in str(error.value)
