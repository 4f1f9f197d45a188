"""A lab's directory for the tests: OpenLDAP's slapd (Debian's package) in a container beside
the test host, configured from LDIF when it starts, with StartTLS and LDAPS under a
certificate of the test's own CA, a service account the hub searches with, three people and
one group."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass

from tests.harness.engine import READY_TIMEOUT, run
from tests.harness.images import build
from tests.harness.tlslab import LabCA, container_ip

BASE = "dc=lab,dc=test"
SERVICE_DN = f"cn=jupyterhub,ou=services,{BASE}"
GROUP_DN = f"cn=physicists,ou=groups,{BASE}"
# alice and bob are physicists, and erin, who is in no lab's data; dave is in the directory but
# not in the group.
PEOPLE = {"alice": ("Alice-Directory-Pw-1", 5001), "bob": ("Bob-Directory-Pw-2", 5002), "dave": ("Dave-Directory-Pw-4", 5004),
          "erin": ("Erin-Directory-Pw-5", 5005)}
GROUP_MEMBERS = ("alice", "bob", "erin")

CONFIG = """dn: cn=config
objectClass: olcGlobal
cn: config
olcTLSCACertificateFile: /etc/ldap/lab/ca.pem
olcTLSCertificateFile: /etc/ldap/lab/cert.pem
olcTLSCertificateKeyFile: /etc/ldap/lab/key.pem

dn: cn=module{0},cn=config
objectClass: olcModuleList
cn: module{0}
olcModulePath: /usr/lib/ldap
olcModuleLoad: back_mdb

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

include: file:///etc/ldap/schema/core.ldif

include: file:///etc/ldap/schema/cosine.ldif

include: file:///etc/ldap/schema/nis.ldif

include: file:///etc/ldap/schema/inetorgperson.ldif

dn: olcDatabase={-1}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {-1}frontend

dn: olcDatabase={0}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {0}config
olcAccess: {0}to * by * none

dn: olcDatabase={1}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {1}mdb
olcDbDirectory: /var/lib/ldap
olcSuffix: BASE
olcRootDN: cn=admin,BASE
olcAccess: {0}to attrs=userPassword by self read by anonymous auth by * none
olcAccess: {1}to * by users read by * none
""".replace("BASE", BASE)


def directory_ldif(service_password: str) -> str:
    entries = [
        f"dn: {BASE}\nobjectClass: dcObject\nobjectClass: organization\no: lab\ndc: lab\n",
        *[f"dn: ou={ou},{BASE}\nobjectClass: organizationalUnit\nou: {ou}\n" for ou in ("people", "groups", "services")],
        f"dn: {SERVICE_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\ncn: jupyterhub\nuserPassword: {service_password}\n",
        *[
            f"dn: uid={name},ou=people,{BASE}\nobjectClass: inetOrgPerson\nobjectClass: posixAccount\nuid: {name}\ncn: {name}\nsn: {name}\n"
            f"uidNumber: {uid}\ngidNumber: 100\nhomeDirectory: /home/{name}\nuserPassword: {password}\n"
            for name, (password, uid) in PEOPLE.items()
        ],
        f"dn: {GROUP_DN}\nobjectClass: groupOfNames\ncn: physicists\n" + "".join(f"member: uid={m},ou=people,{BASE}\n" for m in GROUP_MEMBERS),
    ]
    return "\n".join(entries)


START = (
    "while [ ! -f /etc/ldap/lab/ready ]; do sleep 0.2; done; set -e; "
    "rm -rf /etc/ldap/slapd.d/* /var/lib/ldap/*; "
    "slapadd -n0 -F /etc/ldap/slapd.d -l /etc/ldap/lab/config.ldif; "
    "slapadd -n1 -F /etc/ldap/slapd.d -l /etc/ldap/lab/directory.ldif; "
    "exec slapd -d 0 -h 'ldap:/// ldaps:///' -F /etc/ldap/slapd.d"
)


@dataclass
class Directory:
    container: str
    address: str

    @property
    def url(self) -> str:
        return f"ldap://{self.address}"

    # Down means every connection refused, as from a server whose slapd stopped. Not `docker
    # stop`: a restarted container may get another address on the bridge (the other worker's
    # hosts take the free ones), and the lab's data names this one.
    def stop(self) -> None:
        self._firewall("-I")

    def start(self) -> None:
        self._firewall("-D")
        wait_for_slapd(self)

    def _firewall(self, action: str) -> None:
        pid = run("docker", "inspect", "-f", "{{.State.Pid}}", self.container).stdout.strip()
        run("nsenter", "-t", pid, "-n", "iptables", action, "INPUT", "-p", "tcp", "-j", "REJECT", "--reject-with", "tcp-reset")


def wait_for_slapd(directory: Directory) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while run("docker", "exec", directory.container, "ldapsearch", "-x", "-H", "ldap://127.0.0.1", "-b", "", "-s", "base", check=False).returncode != 0:
        assert time.monotonic() < deadline, "slapd did not start: " + run("docker", "logs", directory.container, check=False).stderr[-2000:]
        time.sleep(0.5)


@contextlib.contextmanager
def slapd(ca: LabCA, service_password: str, name: str = "slapd") -> Iterator[Directory]:
    image, _ = build("slapd")
    container = f"labhub-test-{os.getpid()}-{name}"  # the suite's two workers apart
    run("docker", "rm", "-f", container, check=False)
    run("docker", "run", "-d", "--name", container, "--label", "labhub-test=1", "--entrypoint", "sh", image, "-c", START)
    try:
        address = container_ip(container)
        cert, key = ca.issue("slapd", [], (address,))
        files = {"ca.pem": ca.path.read_text(), "cert.pem": cert.read_text(), "key.pem": key.read_text(),
                 "config.ldif": CONFIG, "directory.ldif": directory_ldif(service_password)}
        for remote, text in files.items():
            run("docker", "exec", "-i", container, "sh", "-c", f"mkdir -p /etc/ldap/lab && cat > /etc/ldap/lab/{remote}", input=text)
        run("docker", "exec", container, "sh", "-c", "chmod 644 /etc/ldap/lab/* && touch /etc/ldap/lab/ready")
        found = Directory(container, address)
        wait_for_slapd(found)
        yield found
    finally:
        run("docker", "rm", "-f", container, check=False)
