"""Directory login settings, checked before any host is touched, and what the hub is told:
no host needed."""

from __future__ import annotations

import pytest

from labhub.inventory import ConfigError, validate_host_data
from labhub.secrets import LDAP_PASSWORD_ENV
from tasks.hub import hub_settings, plan

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
    settings = hub_settings(config, {})["ldap"]
    assert settings["server_address"] == "ldap.lab.example.org" and settings["server_port"] == 636 and settings["tls_strategy"] == "on_connect"
    assert settings["lookup_dn"] and settings["bind_password_file"] == "/srv/jupyterhub/ldap-bind-password"



def test_a_bind_password_of_several_lines_is_refused_unshown(monkeypatch):
    monkeypatch.setenv(LDAP_PASSWORD_ENV, "first-line\nsecond-line")
    message = problems(SEARCH)
    assert "one non-empty line" in message and "first-line" not in message
