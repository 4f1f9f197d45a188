"""HTTPS for the hub: Caddy in front of it, with a certificate from an ACME CA or from files."""

from __future__ import annotations

import datetime
import ipaddress
import re
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from labhub.config.common import Model, check_image_reference, check_url
from labhub.local import REPO, local_path

PROXY_IMAGE = "docker.io/library/caddy:2.10.2"
LETS_ENCRYPT = "https://acme-v02.api.letsencrypt.org/directory"
EMAIL = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"
# HSTS: browsers remember for a year that the hub speaks HTTPS only.
HSTS_MAX_AGE = 31536000
# A served certificate closer than this to its end is drift (a renewal that stopped working).
EXPIRY_WARNING_DAYS = 14


class Tls(Model):
    """How the hub is served: HTTPS through Caddy (ports 80 and 443; 80 only redirects), or
    plain HTTP when the lab says so. The certificate is for the name in hub.public_url."""

    mode: Literal["acme", "files", "none"] | None = Field(
        None,
        description="'acme': a certificate from an ACME CA (Let's Encrypt by default), renewed by Caddy; 'files': the lab's own "
        "certificate and key; 'none': plain HTTP on hub.port (only behind your own TLS proxy or on a trusted network). "
        "Unset: 'acme' when hub.public_url is an https:// URL with a DNS name, else 'none' (and the deploy warns)",
    )
    acme_ca: str = Field(LETS_ENCRYPT, description="ACME directory URL (mode acme); its TLS certificate must be trusted (extra_ca_certificates)")
    acme_email: str | None = Field(None, description="contact address given to the ACME CA (expiry notices); none: no contact")
    certificate: str | None = Field(None, description="mode files: PEM file on this machine, the hub's certificate then its chain")
    key: str | None = Field(None, description="mode files: PEM private key file on this machine, outside the repository (a secret: 0600 on the host)")
    proxy_image: str = Field(PROXY_IMAGE, description="Caddy image of the TLS terminator (service 'proxy' of the stack)")

    _acme_ca = field_validator("acme_ca")(check_url)
    _proxy_image = field_validator("proxy_image")(check_image_reference)

    @field_validator("acme_email")
    @classmethod
    def _email(cls, email: str | None) -> str | None:
        if email is not None and not re.fullmatch(EMAIL, email):
            raise ValueError("must be an e-mail address such as 'it@lab.example.org'")
        return email

    @field_validator("key")
    @classmethod
    def _key_outside_the_repository(cls, path: str | None) -> str | None:
        if path is not None and local_path(path).resolve().is_relative_to(REPO):
            raise ValueError("the key is a secret and must not live in the repository: keep it e.g. in /etc/labhub/tls/ on this machine")
        return path


def tls_name(public_url: str | None) -> str | None:
    """The DNS name a certificate is for: the host of an https:// public URL, not an IP."""
    if not public_url or not public_url.startswith("https://"):
        return None
    name = urlsplit(public_url).hostname or ""
    try:
        ipaddress.ip_address(name)
        return None
    except ValueError:
        return name if "." in name else None


def check_certificate_files(certificate: str, key: str, name: str) -> None:
    """The lab's certificate parses, is for `name`, is in date, and belongs to the key: else a
    clear error (that never quotes the key)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    cert_file, key_file = local_path(certificate), local_path(key)
    if not cert_file.is_file():
        raise ValueError(f"hub.tls.certificate: '{certificate}' is not a file on this machine")
    if not key_file.is_file():
        raise ValueError(f"hub.tls.key: '{key}' is not a file on this machine")
    try:
        served = x509.load_pem_x509_certificates(cert_file.read_bytes())[0]
    except ValueError:
        raise ValueError(f"hub.tls.certificate: '{certificate}' is not a PEM certificate") from None
    try:
        private = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
    except (ValueError, TypeError):
        raise ValueError(f"hub.tls.key: '{key}' is not an unencrypted PEM private key") from None
    if public_der(private.public_key()) != public_der(served.public_key()):
        raise ValueError(f"hub.tls.key: '{key}' is not the key of the certificate '{certificate}'")
    names = certificate_names(served)
    if not name_matches(name, names):
        raise ValueError(f"hub.tls.certificate: '{certificate}' is for {', '.join(names) or 'no DNS name'}, not {name} (hub.public_url)")
    if served.not_valid_after_utc <= datetime.datetime.now(datetime.timezone.utc):
        raise ValueError(f"hub.tls.certificate: '{certificate}' expired on {served.not_valid_after_utc:%Y-%m-%d}")


def public_der(public_key) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def certificate_names(certificate) -> list[str]:
    """The DNS names a certificate is for (its subjectAltName)."""
    from cryptography import x509

    try:
        return certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        return []


def name_matches(name: str, names: list[str]) -> bool:
    """`name` is one of `names`, or matches a wildcard one label deep (*.lab.example.org)."""
    return any(n == name or (n.startswith("*.") and name.split(".", 1)[-1] == n[2:]) for n in names)
