"""TLS settings, checked before any host is touched, and the files they make: no host needed."""

from __future__ import annotations

import pytest

from labhub.inventory import ConfigError, validate_host_data
from tasks.hub import plan
from tests.harness.tlslab import HUB_NAME, LabCA

pytestmark = pytest.mark.quick


def stack(hub: dict):
    return plan(validate_host_data("lab1", {"hub": hub}))


def files_of(hub: dict) -> dict[str, str]:
    return {f.path.rsplit("/", 1)[-1]: f.data.decode() for f in [*stack(hub).files, *stack(hub).certificate_files]}


def problems(hub: dict) -> str:
    with pytest.raises(ConfigError) as error:
        validate_host_data("lab1", {"hub": hub})
    return str(error.value)


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    return LabCA(tmp_path_factory.mktemp("ca"))


def test_a_hub_with_a_public_https_name_gets_acme_from_lets_encrypt_by_default():
    made = files_of({"public_url": f"https://{HUB_NAME}/"})
    assert f"{HUB_NAME} {{" in made["Caddyfile"] and "acme_ca https://acme-v02.api.letsencrypt.org/directory" in made["Caddyfile"]
    assert 'Strict-Transport-Security "max-age=31536000"' in made["Caddyfile"] and "reverse_proxy hub:8000" in made["Caddyfile"]
    compose = made["compose.yaml"]
    assert '"127.0.0.1:8000:8000"' in compose and '"0.0.0.0:443:443"' in compose and '"0.0.0.0:80:80"' in compose
    assert "\n  proxy:" in compose and "./tls:" not in compose


def test_without_a_public_name_the_hub_is_plain_http_on_its_port():
    made = files_of({})
    assert "Caddyfile" not in made and "\n  proxy:" not in made["compose.yaml"] and '"0.0.0.0:8000:8000"' in made["compose.yaml"]


def test_files_mode_puts_the_labs_certificate_and_a_root_only_key_in_place(ca):
    certificate, key = ca.issue("hub", [HUB_NAME])
    found = stack({"public_url": f"https://{HUB_NAME}/", "tls": {"mode": "files", "certificate": str(certificate), "key": str(key)}})
    modes = {f.path: (f.mode, f.secret) for f in found.certificate_files}
    assert modes == {"/opt/jupyterhub/tls/certificate.pem": (0o644, False), "/opt/jupyterhub/tls/key.pem": (0o600, True)}
    caddyfile = next(f.data.decode() for f in found.files if f.path.endswith("Caddyfile"))
    assert "tls /etc/caddy/tls/certificate.pem /etc/caddy/tls/key.pem" in caddyfile and "acme_ca" not in caddyfile
    assert "repr" not in repr(found.certificate_files[1]) and "PRIVATE" not in repr(found.certificate_files[1])


@pytest.mark.parametrize(
    "hub, expected",
    [
        ({"tls": {"mode": "acme"}}, "hub.public_url must be the hub's https:// address"),
        ({"public_url": "https://10.0.0.5/", "tls": {"mode": "acme"}}, "hub.public_url must be the hub's https:// address"),
        ({"public_url": f"https://{HUB_NAME}/", "tls": {"mode": "files"}}, "set hub.tls.certificate and hub.tls.key"),
        ({"public_url": f"https://{HUB_NAME}/", "tls": {"acme_email": "not an address"}}, "must be an e-mail address"),
        ({"public_url": f"https://{HUB_NAME}/", "tls": {"mode": "letsencrypt"}}, "'acme', 'files' or 'none'"),
        ({"public_url": f"https://{HUB_NAME}/", "tls": {"proxy_image": "caddy --privileged"}}, "Docker image reference"),
        ({"public_url": f"https://{HUB_NAME}/", "tls": {"mode": "files", "certificate": "/nonexistent.pem", "key": "/nonexistent.key"}}, "is not a file"),
        ({"public_url": f"https://{HUB_NAME}/", "tls": {"mode": "files", "key": "files/hub/Dockerfile", "certificate": "x"}}, "must not live in the repository"),
    ],
)
def test_bad_tls_settings_are_refused_with_what_to_write(hub, expected):
    assert expected in problems(hub)


def test_a_certificate_for_another_name_an_expired_one_or_another_key_is_refused_unquoted(ca):
    other, other_key = ca.issue("other", ["other.lab.test"])
    mine, mine_key = ca.issue("mine", [HUB_NAME])
    expired, expired_key = ca.issue("expired", [HUB_NAME], days=-1)
    url = f"https://{HUB_NAME}/"
    message = problems({"public_url": url, "tls": {"mode": "files", "certificate": str(other), "key": str(other_key)}})
    assert f"is for other.lab.test, not {HUB_NAME}" in message
    message = problems({"public_url": url, "tls": {"mode": "files", "certificate": str(mine), "key": str(other_key)}})
    assert "is not the key of the certificate" in message and "PRIVATE" not in message
    assert "expired on" in problems({"public_url": url, "tls": {"mode": "files", "certificate": str(expired), "key": str(expired_key)}})
    wildcard, wildcard_key = ca.issue("wildcard", ["*.lab.test"])
    assert validate_host_data("lab1", {"hub": {"public_url": url, "tls": {"mode": "files", "certificate": str(wildcard), "key": str(wildcard_key)}}})


def test_with_tls_jupyterhub_knows_its_https_address_so_its_cookies_are_secure(monkeypatch):
    from tests.test_hub_config import load

    assert load({"hub": {"public_url": f"https://{HUB_NAME}/"}}, monkeypatch).JupyterHub.public_url == f"https://{HUB_NAME}/"
    assert "public_url" not in load({}, monkeypatch).JupyterHub
