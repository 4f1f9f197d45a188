"""Members admitted by a directory group (hub.ldap.admit_group_members): read from the
directory when the data is validated, on the machine that runs pyinfra or the drift check,
so each becomes a lab member like any other: a jupyter-<name> account whose UID is their
uidNumber, the same on every server and on the file server."""

from __future__ import annotations

import ssl
import tempfile

from labhub.config import HubUser, LabHost
from labhub.config.common import EntryError
from labhub.local import certificates

DIRECTORY_TIMEOUT = 10  # seconds to connect and to answer


class DirectoryError(Exception):
    """The directory could not tell who its groups' members are; never shows the password."""


def with_group_members(config: LabHost) -> LabHost:
    """The config with the allowed groups' members who are not in users added to users."""
    found = group_members(config)
    listed = {user.name for user in config.users}
    taken = {a.uid: a.name for a in config.admins if a.uid} | {u.uid: u.name for u in config.users if u.uid}
    added = []
    for name, uid in sorted(found.items()):
        if name in listed:
            continue  # data says who they are (a UID from data wins)
        if uid in taken:
            raise EntryError("hub.ldap.admit_group_members", f"directory member '{name}' has uidNumber {uid}, which '{taken[uid]}' in data has too")
        try:
            added.append(HubUser(name=name, uid=uid))
        except ValueError as error:
            reason = "; ".join(e["msg"] for e in error.errors())
            raise EntryError("hub.ldap.admit_group_members", f"directory member '{name}' (uidNumber {uid}) cannot be a lab member: {reason}") from None
    return config.model_copy(update={"users": [*config.users, *added]}) if added else config


def group_members(config: LabHost) -> dict[str, int]:
    """{login name: uidNumber} of everyone in the allowed groups (groupOfNames/groupOfUniqueNames members)."""
    import ldap3
    from ldap3.core.exceptions import LDAPException

    ldap = config.hub.ldap
    with tempfile.NamedTemporaryFile("wb", suffix=".pem") as bundle:
        # The system's CAs and the lab's extra ones, as the hub's image trusts them.
        system = ssl.get_default_verify_paths().cafile
        if system:
            with open(system, "rb") as trusted:
                bundle.write(trusted.read() + b"\n")
        bundle.write(b"\n".join(certificates(config.extra_ca_certificates).values()))
        bundle.flush()
        tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=bundle.name)
        servers = [ldap3.Server(host, port=port, use_ssl=ldap.tls_strategy == "on_connect", tls=tls, connect_timeout=DIRECTORY_TIMEOUT)
                   for host, port in ldap.addresses]
        server = servers[0] if len(servers) == 1 else ldap3.ServerPool(servers, ldap3.FIRST, active=1, exhaust=False)
        where = f"the directory {', '.join([ldap.server_url, *ldap.fallback_urls])}"
        try:
            connection = ldap3.Connection(server, user=ldap.search_bind_dn, password=ldap.credentials.bind_password.get_secret_value(),
                                          receive_timeout=DIRECTORY_TIMEOUT, raise_exceptions=True)
            connection.open()
            if ldap.tls_strategy == "before_bind":
                connection.start_tls()
            connection.bind()
            members: dict[str, int] = {}
            for group in ldap.allowed_groups:
                connection.search(group, "(objectClass=*)", search_scope=ldap3.BASE, attributes=["member", "uniqueMember"])
                for entry in connection.entries:
                    for dn in [*entry.entry_attributes_as_dict.get("member", []), *entry.entry_attributes_as_dict.get("uniqueMember", [])]:
                        connection.search(dn, "(objectClass=posixAccount)", search_scope=ldap3.BASE, attributes=[ldap.username_attribute, "uidNumber"])
                        for person in connection.entries:
                            values = person.entry_attributes_as_dict
                            if values.get(ldap.username_attribute) and values.get("uidNumber"):
                                members[str(values[ldap.username_attribute][0]).lower()] = int(values["uidNumber"][0])
            connection.unbind()
        except LDAPException as error:
            # ldap3's messages name the server and the failure, never the password.
            raise DirectoryError(f"hub.ldap.admit_group_members: {where} could not be read from this machine: {type(error).__name__}: {error}") from None
    return members
