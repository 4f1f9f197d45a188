"""Directory logins: JupyterHub's LDAP authenticator (OpenLDAP, Active Directory)."""

from __future__ import annotations

import re

from pydantic import Field, SecretStr, field_validator, model_validator

from labhub.config.common import Model, check_one_line_secret

LDAP_URL = re.compile(r"(ldaps?)://([A-Za-z0-9.-]+|\[[0-9A-Fa-f:]+\])(:[0-9]{1,5})?/?")
LDAP_URL_RULE = "must be ldaps://host[:port] or ldap://host[:port]"
# A DN, a DN template ({username}) or a search base: attribute=value pairs of plain characters.
DN = re.compile(r"[A-Za-z][A-Za-z0-9-]*=[^,=\"\\\x00-\x1f\x7f]+(,[A-Za-z][A-Za-z0-9-]*=[^,=\"\\\x00-\x1f\x7f]+)*")
ATTRIBUTE = re.compile(r"[A-Za-z][A-Za-z0-9-]*")


class LdapCredentials(Model):
    """The service account's password. Never from host data: see labhub/secrets.py."""

    bind_password: SecretStr = Field(description="password of ldap.search_bind_dn")

    _bind_password = field_validator("bind_password")(check_one_line_secret)


class Ldap(Model):
    """hub.authenticator 'ldap': members in data (and, with admit_group_members, everyone in
    allowed_groups) log in with their directory password. Their host accounts (jupyter-<name>;
    UID from data, or the directory's uidNumber for members it admits) are made by the deploy,
    as for any member."""

    server_url: str | None = Field(None, description="ldaps://host[:port] (TLS from the start) or ldap://host[:port] (StartTLS before the bind)")
    fallback_urls: list[str] = Field(
        default_factory=list, description="more servers of the same directory (replicas), tried in order when the ones before cannot be reached; same scheme as server_url"
    )
    start_tls: bool = Field(True, description="ldap:// URLs: StartTLS before the bind; False sends passwords in clear text (refused unless insecure)")
    insecure: bool = Field(False, description="allow ldap:// without StartTLS (a test directory on the same host only)")
    bind_dn_template: list[str] = Field(
        default_factory=list, description="DNs a member binds as, e.g. 'uid={username},ou=people,dc=lab,dc=example,dc=org'; or use a search"
    )
    search_base: str | None = Field(None, description="search for the member's DN under this base (with search_bind_dn), instead of a template")
    search_bind_dn: str | None = Field(None, description="the service account the hub searches with; its password is a secret (LABHUB_LDAP_BIND_PASSWORD)")
    username_attribute: str = Field("uid", description="the attribute that holds the login name (Active Directory: sAMAccountName)")
    allowed_groups: list[str] = Field(default_factory=list, description="group DNs; when set, a member must also be in one of them")
    admit_group_members: bool = Field(
        False, description="also admit everyone in allowed_groups who is not in users: each deploy (and drift check) reads the groups' "
        "members from the directory through the service account, and each gets a jupyter-<name> account whose UID is their uidNumber",
    )
    credentials: LdapCredentials | None = Field(None, description="filled in from the secrets; never set in data")

    @field_validator("server_url")
    @classmethod
    def _url(cls, url: str | None) -> str | None:
        if url is not None and not LDAP_URL.fullmatch(url):
            raise ValueError(f"{LDAP_URL_RULE}, e.g. 'ldaps://ldap.lab.example.org'")
        return url

    @field_validator("fallback_urls")
    @classmethod
    def _fallbacks(cls, urls: list[str]) -> list[str]:
        for url in urls:
            if not LDAP_URL.fullmatch(url):
                raise ValueError(f"'{url}': {LDAP_URL_RULE}, e.g. 'ldaps://ldap2.lab.example.org'")
        return urls

    @field_validator("bind_dn_template")
    @classmethod
    def _templates(cls, templates: list[str]) -> list[str]:
        for template in templates:
            if "{username}" not in template or not DN.fullmatch(template.replace("{username}", "x")):
                raise ValueError(f"'{template}': must be a DN with {{username}}, e.g. 'uid={{username}},ou=people,dc=lab,dc=org'")
        return templates

    @field_validator("search_base", "search_bind_dn")
    @classmethod
    def _dn(cls, dn: str | None) -> str | None:
        if dn is not None and not DN.fullmatch(dn):
            raise ValueError(f"'{dn}' is not a DN such as 'ou=people,dc=lab,dc=org'")
        return dn

    @field_validator("allowed_groups")
    @classmethod
    def _groups(cls, groups: list[str]) -> list[str]:
        for dn in groups:
            if not DN.fullmatch(dn):
                raise ValueError(f"'{dn}' is not a group DN such as 'cn=physicists,ou=groups,dc=lab,dc=org'")
        return groups

    @field_validator("username_attribute")
    @classmethod
    def _attribute(cls, name: str) -> str:
        if not ATTRIBUTE.fullmatch(name):
            raise ValueError("must be an LDAP attribute name such as 'uid' or 'sAMAccountName'")
        return name

    @model_validator(mode="after")
    def _how_members_are_found(self) -> Ldap:
        schemes = {url.split(":", 1)[0] for url in [self.server_url, *self.fallback_urls] if url}
        if len(schemes) > 1:
            raise ValueError("hub.ldap.fallback_urls: every server must use server_url's scheme (all ldaps:// or all ldap://), so they share one TLS setting")
        if self.server_url and self.server_url.startswith("ldap://") and not self.start_tls and not self.insecure:
            raise ValueError("hub.ldap.start_tls is False on an ldap:// URL: passwords would cross the network in clear text; use ldaps:// or StartTLS")
        return self

    @property
    def search(self) -> bool:
        return self.search_base is not None

    @property
    def tls_strategy(self) -> str:
        """ldapauthenticator's tls_strategy."""
        if self.server_url and self.server_url.startswith("ldaps://"):
            return "on_connect"
        return "before_bind" if self.start_tls else "insecure"

    @property
    def address(self) -> tuple[str, int]:
        return url_address(self.server_url or "")

    @property
    def addresses(self) -> list[tuple[str, int]]:
        """(host, port) of server_url and its fallbacks, in the order they are tried."""
        return [url_address(url) for url in [self.server_url, *self.fallback_urls] if url]


def url_address(url: str) -> tuple[str, int]:
    match = LDAP_URL.fullmatch(url)
    port = int(match.group(3)[1:]) if match.group(3) else (636 if match.group(1) == "ldaps" else 389)
    return match.group(2).strip("[]"), port


def check_ldap(ldap: Ldap) -> None:
    """Called for hub.authenticator 'ldap': what the authenticator needs, or a clear error."""
    if not ldap.server_url:
        raise ValueError("hub.authenticator is 'ldap': set hub.ldap.server_url, e.g. 'ldaps://ldap.lab.example.org'")
    if ldap.search and ldap.bind_dn_template:
        raise ValueError("hub.ldap: set either bind_dn_template or search_base (with search_bind_dn), not both")
    if not ldap.search and not ldap.bind_dn_template:
        raise ValueError("hub.ldap: set bind_dn_template (members bind directly) or search_base and search_bind_dn (the hub searches for them)")
    if ldap.search and not ldap.search_bind_dn:
        raise ValueError("hub.ldap.search_base needs search_bind_dn, the service account the hub searches with")
    if ldap.admit_group_members and not (ldap.search and ldap.allowed_groups):
        raise ValueError("hub.ldap.admit_group_members needs allowed_groups and a search (search_base, search_bind_dn): the deploy reads the groups' members through the service account")
    if ldap.search and ldap.credentials is None:
        raise ValueError("hub.ldap.search_bind_dn needs its password: set LABHUB_LDAP_BIND_PASSWORD or [ldap] bind_password in the secrets file")
