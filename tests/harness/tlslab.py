"""HTTPS for a test hub: a certificate authority the test creates (for `files` and for
Pebble's own TLS), Pebble (Let's Encrypt's ACME test server) in a container beside the test
host, and a client that reaches the hub by its name at the test host's address."""

from __future__ import annotations

import contextlib
import datetime
import http.client
import json
import os
import socket
import ssl
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.harness.engine import CACHE, READY_TIMEOUT, cache_lock, run
from tests.harness.images import build

HUB_NAME = "hub.lab.test"


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


@dataclass
class LabCA:
    """A CA of the test's own: issues server certificates for names and IPs. Its key and
    certificate are kept in `directory` and used again while they have a week left."""

    directory: Path

    def __post_init__(self):
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / "labhub-test-ca.crt"
        key_file = self.directory / "labhub-test-ca.key"
        if self.path.exists() and key_file.exists():
            self.certificate = x509.load_pem_x509_certificate(self.path.read_bytes())
            if self.certificate.not_valid_after_utc - datetime.datetime.now(datetime.timezone.utc) > datetime.timedelta(days=7):
                self.key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
                return
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "labhub test CA")])
        now = datetime.datetime.now(datetime.timezone.utc)
        self.certificate = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(self.key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        key_file.touch(mode=0o600)
        key_file.write_bytes(self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        self.path.write_bytes(_pem(self.certificate))

    def issue(self, stem: str, names: list[str], ips: tuple[str, ...] = (), days: int = 30) -> tuple[Path, Path]:
        """(certificate file, key file, 0600) for these names, valid `days` from now."""
        import ipaddress

        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        alt = [x509.DNSName(n) for n in names] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
        certificate = (
            x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, (names or ips)[0])]))
            .issuer_name(self.certificate.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=2 if days < 0 else 0, minutes=5)).not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            # What Python 3.13's strict verification wants of a leaf (ldap3 in the hub, say).
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        issued = self.directory / "issued" / str(os.getpid())  # the suite's two workers share the session's CA
        issued.mkdir(parents=True, exist_ok=True)
        cert_file, key_file = issued / f"{stem}.crt", issued / f"{stem}.key"
        cert_file.write_bytes(_pem(certificate) + _pem(self.certificate))
        key_file.touch(mode=0o600)
        key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        return cert_file, key_file


def session_ca() -> LabCA:
    """The suite's CA, one per machine: Pebble's and slapd's certificates chain to it, and
    every test hub trusts it from its first converge (hublab.hub_data), so that a module
    that brings up one of those servers does not change the hub's CA certificates, which
    would rebuild its images."""
    with cache_lock("test-ca"):
        return LabCA(CACHE / "test-ca")


def container_ip(container: str) -> str:
    return run("docker", "inspect", "--format", "{{.NetworkSettings.IPAddress}}", container).stdout.strip()


@dataclass
class Pebble:
    container: str
    address: str
    ca: LabCA

    @property
    def directory_url(self) -> str:
        return f"https://{self.address}:14000/dir"

    def roots(self) -> str:
        """The root that Pebble (re)generated when it started: what its certificates chain to."""
        context = ssl.create_default_context(cafile=str(self.ca.path))
        with urllib.request.urlopen(f"https://{self.address}:15000/roots/0", context=context, timeout=10) as answer:
            return answer.read().decode()


PEBBLE_START = (
    "while [ ! -f /etc/pebble/ready ]; do sleep 0.2; done; "
    "exec /usr/bin/pebble -config /etc/pebble/pebble-config.json"
)


@contextlib.contextmanager
def pebble(ca: LabCA, hub_address: str, name: str = "pebble") -> Iterator[Pebble]:
    """Pebble on the runner's Docker network, validating HTTP-01 and TLS-ALPN-01 challenges
    for HUB_NAME at the test host's address (ports 80 and 443), with a certificate of the
    test CA for its own address. No random nonce rejections or sleeps: fast and repeatable."""
    image, _ = build("pebble")
    container = f"labhub-test-{os.getpid()}-{name}"  # the suite's two workers apart
    run("docker", "rm", "-f", container, check=False)
    run(
        "docker", "run", "-d", "--name", container, "--label", "labhub-test=1",
        "--add-host", f"{HUB_NAME}:{hub_address}", "-e", "PEBBLE_VA_NOSLEEP=1", "-e", "PEBBLE_WFE_NONCEREJECT=0",
        "--entrypoint", "sh", image, "-c", PEBBLE_START,
    )
    try:
        address = container_ip(container)
        cert, key = ca.issue("pebble", [], (address,))
        config = {"pebble": {
            "listenAddress": "0.0.0.0:14000", "managementListenAddress": "0.0.0.0:15000",
            "certificate": "/etc/pebble/cert.pem", "privateKey": "/etc/pebble/key.pem",
            "httpPort": 80, "tlsPort": 443, "ocspResponderURL": "", "externalAccountBindingRequired": False,
            "certificateValidityPeriod": 7776000,
        }}
        (cert.parent / "pebble-config.json").write_text(json.dumps(config))
        for local, remote in ((cert, "cert.pem"), (key, "key.pem"), (cert.parent / "pebble-config.json", "pebble-config.json")):
            run("docker", "exec", "-i", container, "sh", "-c", f"mkdir -p /etc/pebble && cat > /etc/pebble/{remote}", input=local.read_text())
        run("docker", "exec", container, "touch", "/etc/pebble/ready")
        found = Pebble(container, address, ca)
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            try:
                found.roots()
                break
            except OSError:
                assert time.monotonic() < deadline, "Pebble did not start: " + run("docker", "logs", container, check=False).stderr[-2000:]
                time.sleep(0.5)
        yield found
    finally:
        run("docker", "rm", "-f", container, check=False)


class ResolvedHTTPSHandler(urllib.request.HTTPSHandler):
    """HTTPS to names this machine's DNS does not know: each name connects to its address, and
    the certificate is verified for the name (SNI too), as a browser would."""

    def __init__(self, addresses: dict[str, str], context: ssl.SSLContext):
        super().__init__(context=context)
        self.addresses, self.context = addresses, context

    def https_open(self, request):
        addresses = self.addresses

        class Connection(http.client.HTTPSConnection):
            def connect(self):
                sock = socket.create_connection((addresses.get(self.host, self.host), self.port), self.timeout)
                self.sock = self._context.wrap_socket(sock, server_hostname=self.host)

        return self.do_open(Connection, request, context=self.context)


def served_certificate(address: str, name: str, cafile: str | None = None) -> x509.Certificate:
    """The certificate served at address:443 for `name`; verified against `cafile` when given
    (ssl.SSLCertVerificationError if it does not verify)."""
    context = ssl.create_default_context(cafile=cafile) if cafile else ssl._create_unverified_context()
    with socket.create_connection((address, 443), timeout=10) as sock, context.wrap_socket(sock, server_hostname=name) as tls:
        return x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))


def plain_http(address: str, name: str, path: str) -> tuple[int, dict[str, str]]:
    """(status, headers) of GET http://name/path at address:80, redirects not followed."""
    connection = http.client.HTTPConnection(address, 80, timeout=10)
    try:
        connection.request("GET", path, headers={"Host": name})
        answer = connection.getresponse()
        return answer.status, {k.lower(): v for k, v in answer.getheaders()}
    finally:
        connection.close()
