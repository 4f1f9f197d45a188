"""HTTPS for the hub, for real and offline: a test host's hub gets its certificate from Pebble
(Let's Encrypt's ACME test server, in a container beside it) through Caddy, serves it, sends
plain HTTP on to HTTPS, and logs members in with Secure cookies; then the lab's own
certificate (`files`, from a CA the test creates) replaces it, its key stays root-only and
unprinted, and a certificate near its end, or for another name, is drift."""

from __future__ import annotations

import datetime
import json
import ssl
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.hashes import SHA256

from tests.harness import cli, snapshots
from tests.harness.browser import wait_for_jupyterlab
from tests.harness.hosts import TestHost, remove_host, write_inventory
from tests.harness.hubclient import HubUser
from tests.harness.hublab import SHARE_CREDENTIALS, hub_data
from tests.harness.images import build
from tests.harness.lab import write_secrets
from tests.harness.receivers import alert_settings, receivers
from tests.harness.tlslab import HUB_NAME, LabCA, Pebble, ResolvedHTTPSHandler, container_ip, pebble, plain_http, served_certificate, session_ca

pytestmark = [pytest.mark.host, pytest.mark.hub, pytest.mark.tls]


@dataclass
class TlsLab:
    host: TestHost
    address: str  # the test host's own address on the runner's Docker network
    inventory: Path
    data: dict
    ca: LabCA
    pebble: Pebble
    pebble_root: Path

    def converge(self, tls: dict, *extra: str) -> dict:
        self.data["hub"]["tls"] = tls
        write_inventory(self.inventory, [(self.host, self.data)])
        return cli.converge(self.inventory, *extra)

    def user(self, cafile: Path) -> HubUser:
        context = ssl.create_default_context(cafile=str(cafile))
        return HubUser(f"https://{HUB_NAME}", ResolvedHTTPSHandler({HUB_NAME: self.address}, context))


@pytest.fixture(scope="module")
def tls_lab(tmp_path_factory, hub_snapshot, ssh_key):
    """A copy of the run's converged hub host, given a public https:// name."""
    workdir = tmp_path_factory.mktemp("tls")
    ca = session_ca()
    host = snapshots.start_copy(hub_snapshot, "tlshost", ssh_key)
    try:
        address = container_ip(host.container)
        with pebble(ca, address) as acme:
            data = hub_data()
            caddy_image, caddy_archive = build("caddy")
            data["image_archives"].append(str(caddy_archive))
            data["hub"]["public_url"] = f"https://{HUB_NAME}/"
            data["hub"]["tls"] = {"acme_ca": acme.directory_url, "acme_email": "it@lab.test", "proxy_image": caddy_image}
            data["hub"]["lab_page"] = True  # its admin view shows the served certificate's end date
            inventory = write_inventory(workdir / "tls_hosts.py", [(host, data)])
            write_secrets(inventory, SHARE_CREDENTIALS)
            started = time.monotonic()
            first = cli.converge(inventory)
            print(f"tls: converge to HTTPS with ACME through Pebble: {time.monotonic() - started:.0f} s")
            root = workdir / "pebble-root.pem"
            root.write_text(acme.roots())
            lab = TlsLab(host, address, inventory, data, ca, acme, root)
            lab.first_run = first
            yield lab
    finally:
        remove_host(host)


def test_acme_a_certificate_from_pebble_is_issued_and_served(tls_lab):
    served = served_certificate(tls_lab.address, HUB_NAME, cafile=str(tls_lab.pebble_root))  # verifies, or raises
    names = served.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert names == [HUB_NAME]
    assert "Pebble" in served.issuer.rfc4514_string()
    with pytest.raises(ssl.SSLCertVerificationError):  # not a certificate any CA but Pebble's would vouch for
        served_certificate(tls_lab.address, HUB_NAME, cafile=str(tls_lab.ca.path))


def test_plain_http_redirects_to_https(tls_lab):
    status, headers = plain_http(tls_lab.address, HUB_NAME, "/hub/login?next=%2Fhub%2Fhome")
    assert status == 308 and headers["location"] == f"https://{HUB_NAME}/hub/login?next=%2Fhub%2Fhome"


def test_a_member_logs_in_over_https_with_secure_cookies(tls_lab):
    alice = tls_lab.user(tls_lab.pebble_root)
    assert alice.login("alice", "alice-over-https-1")
    cookies = {c.name: c for c in alice.cookies}
    assert cookies["jupyterhub-session-id"].secure and cookies["jupyterhub-hub-login"].secure, {n: c.secure for n, c in cookies.items()}
    assert alice.whoami() == "alice"


def test_behind_the_tls_proxy_a_failed_login_counts_against_the_clients_own_address_not_a_forged_one(tls_lab):
    import re
    import urllib.parse

    began = tls_lab.host.exec("date -u +%Y-%m-%dT%H:%M:%S.%NZ").stdout.strip()
    stranger = tls_lab.user(tls_lab.pebble_root)
    forged = {"X-Forwarded-For": "203.0.113.9", "X-Real-IP": "203.0.113.10"}  # on the form's page too: its XSRF token is bound to them
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', stranger.request("GET", "/hub/login", headers=forged)[1]).group(1)
    form = urllib.parse.urlencode({"username": "nobody-over-https", "password": "wrong-password-1", "_xsrf": xsrf}).encode()
    assert stranger.request("POST", "/hub/login", form, {**forged, "Content-Type": "application/x-www-form-urlencoded"})[0] == 403
    log = tls_lab.host.exec(f"docker logs --since {began} jupyterhub-hub-1 2>&1").stdout
    seen = re.search(r"Failed login for 'nobody-over-https' from (\S+)", log)
    runner = tls_lab.host.exec("ip -4 route show default").stdout.split()[2]  # the test host's gateway: where the runner comes from
    assert seen and seen.group(1) == runner, f"expected the client's own address {runner}, found {seen and seen.group(1)}:\n{log[-2000:]}"


@pytest.mark.browser
def test_a_browser_sent_to_plain_http_logs_in_over_https_with_no_certificate_error(tls_lab, tmp_path):
    """Chromium trusts Pebble's root (in its NSS database, as a lab's browsers trust Let's
    Encrypt) and nothing else: a certificate error would stop it at an interstitial page."""
    import os
    import subprocess

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as shown
    from selenium.webdriver.support.ui import WebDriverWait

    from tests.test_browser import CHROMIUM_FLAGS

    nssdb = tmp_path / "home" / ".pki" / "nssdb"
    nssdb.mkdir(parents=True)
    subprocess.run(["certutil", "-d", f"sql:{nssdb}", "-N", "--empty-password"], check=True)
    subprocess.run(["certutil", "-d", f"sql:{nssdb}", "-A", "-t", "C,,", "-n", "pebble", "-i", str(tls_lab.pebble_root)], check=True)
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", f"--host-resolver-rules=MAP {HUB_NAME} {tls_lab.address}"):
        options.add_argument(flag)
    browser = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver", env={**os.environ, "HOME": str(tmp_path / "home")}))
    try:
        browser.get(f"http://{HUB_NAME}/hub/login")  # plain HTTP: the redirect takes it to HTTPS
        WebDriverWait(browser, 30).until(shown.presence_of_element_located((By.ID, "username_input")))
        assert browser.current_url.startswith(f"https://{HUB_NAME}/hub/login")
        browser.find_element(By.ID, "username_input").send_keys("bob")
        browser.find_element(By.ID, "password_input").send_keys("bob-in-the-browser-1")
        browser.find_element(By.ID, "login_submit").click()
        wait_for_jupyterlab(browser, tls_lab.host, "bob")  # in bob's server, through Caddy (its websockets too)
        assert browser.current_url.startswith(f"https://{HUB_NAME}/user/bob/lab")
    finally:
        browser.quit()


def test_the_hubs_own_port_is_not_reachable_from_the_network(tls_lab):
    import socket

    with pytest.raises(OSError):
        socket.create_connection((tls_lab.address, tls_lab.data["hub"].get("port", 8000)), timeout=5).close()


def test_host_checks_pass_with_the_tls_checks_run_not_skipped(tls_lab):
    checks = cli.host_checks(tls_lab.inventory)
    assert checks.returncode == 0, checks.explain()
    for check in ("test_https_serves_a_certificate_for_the_hubs_name_not_near_its_end",
                  "test_plain_http_redirects_to_https_and_https_sends_hsts", "test_with_tls_the_hubs_own_port_is_on_the_loopback_only"):
        assert f"PASSED labhub/checks/test_hub.py::{check}" in checks.stdout, checks.stdout[-3000:]


def test_a_second_run_changes_nothing(tls_lab):
    assert cli.changed_operations(cli.converge(tls_lab.inventory)) == {}


def test_files_the_labs_own_certificate_replaces_acme_and_its_key_stays_secret(tls_lab):
    certificate, key = tls_lab.ca.issue("hub", [HUB_NAME], days=60)
    tls = {"mode": "files", "certificate": str(certificate), "key": str(key), "proxy_image": tls_lab.data["hub"]["tls"]["proxy_image"]}
    tls_lab.data["hub"]["tls"] = tls
    write_inventory(tls_lab.inventory, [(tls_lab.host, tls_lab.data)])
    shown = cli.pyinfra(tls_lab.inventory, "-y", "-vvv", "--diff", "deploy.py")
    assert shown.returncode == 0, shown.explain()
    key_body = "".join(key.read_text().splitlines()[1:-1])
    for line in key.read_text().splitlines()[1:-1]:
        assert line not in shown.output, "a line of the TLS key is in pyinfra's output"
    assert key_body[:40] not in shown.output.replace("\n", "")

    served = served_certificate(tls_lab.address, HUB_NAME, cafile=str(tls_lab.ca.path))
    expected = x509.load_pem_x509_certificates(certificate.read_bytes())[0]
    assert served.fingerprint(SHA256()) == expected.fingerprint(SHA256())
    stat = tls_lab.host.exec("stat -c '%U:%G %a' /opt/jupyterhub/tls /opt/jupyterhub/tls/key.pem").stdout.split()
    assert stat == ["root:root", "700", "root:root", "600"]
    alice = tls_lab.user(tls_lab.ca.path)
    assert alice.login("alice", "alice-over-https-1")
    assert cli.changed_operations(cli.converge(tls_lab.inventory)) == {}
    assert cli.host_checks(tls_lab.inventory).returncode == 0


def test_a_certificate_for_another_name_on_the_host_is_drift_and_the_next_run_puts_it_right(tls_lab):
    other, other_key = tls_lab.ca.issue("other", ["other.lab.test"], days=60)
    tls_lab.host.exec("cat > /opt/jupyterhub/tls/certificate.pem", input=other.read_text())
    tls_lab.host.exec("cat > /opt/jupyterhub/tls/key.pem", input=other_key.read_text())
    tls_lab.host.exec("docker restart jupyterhub-proxy-1")
    time.sleep(2)
    drift = cli.drift_check(tls_lab.inventory)
    assert drift.returncode != 0
    assert f"expected a certificate for {HUB_NAME}, found one for other.lab.test" in drift.output, drift.output[-3000:]
    assert "PRIVATE KEY" not in drift.output

    changed = cli.changed_operations(cli.converge(tls_lab.inventory))
    assert "JupyterHub | TLS certificate and key" in next(iter(changed.values()))
    names = served_certificate(tls_lab.address, HUB_NAME, cafile=str(tls_lab.ca.path)).extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert names == [HUB_NAME]


def test_a_certificate_near_its_end_is_drift_with_its_date_and_an_alert(tls_lab, tmp_path):
    soon, soon_key = tls_lab.ca.issue("soon", [HUB_NAME], days=10)
    ends = x509.load_pem_x509_certificates(soon.read_bytes())[0].not_valid_after_utc
    tls_lab.converge({**tls_lab.data["hub"]["tls"], "certificate": str(soon), "key": str(soon_key)})
    with receivers() as (smtp, _):
        drift = cli.drift_check(tls_lab.inventory, "--alerts", str(alert_settings(tmp_path / "alerts.json", {"mail": smtp.url()})))
        assert drift.returncode != 0
        expires = f"the certificate expires on {ends:%Y-%m-%d %H:%M} UTC (in 9 days, expected at least 14)"
        assert expires in drift.output, drift.output[-3000:]
        assert "alert tlshost:certificate (new) to mail: delivered" in drift.output, drift.output[-3000:]
        mail = smtp.wait_for(1)[0]
    assert mail.subject == "[Test Lab] tlshost: certificate (warning)" and expires in mail.body, (mail.subject, mail.body)
    assert datetime.datetime.now(datetime.timezone.utc) < ends
    # The lab page's admin view reads the same date from what HTTPS serves.
    bob = tls_lab.user(tls_lab.ca.path)
    assert bob.login("bob", "bob-in-the-browser-1")  # his password since the browser test
    status, text = bob.request("GET", "/services/lab/api/admin", headers={"Authorization": f"token {bob.create_token('bob')}"})
    assert status == 200, text
    certificate = json.loads(text)["certificate"]
    assert certificate == {"name": HUB_NAME, "ends": f"{ends:%Y-%m-%d %H:%M} UTC", "days_left": 9}, certificate


BENCH = Path(__file__).parent / "vendor" / "docker-bench-security"
HARDENING = Path(__file__).parent.parent / "docs" / "hardening.md"


def documented_warnings() -> set[str]:
    """The items docs/hardening.md says stay WARN (with the reason in their row)."""
    rows = [line.split("|") for line in HARDENING.read_text().splitlines() if line.startswith("| ")]
    return {item.strip() for row in rows if len(row) > 3 and row[3].strip().startswith("**WARN**") for item in row[1].split(",")}


def test_docker_bench_sections_2_and_5_warn_only_where_this_table_gives_a_reason(tls_lab):
    import re
    import subprocess

    alice = tls_lab.user(tls_lab.ca.path)
    assert alice.login("alice", "alice-over-https-1")
    alice.create_token("alice")
    alice.start_server("alice")  # section 5 sees a member's server too
    bundle = subprocess.run(["tar", "-C", str(BENCH.parent), "-cf", "-", BENCH.name], capture_output=True, check=True).stdout
    subprocess.run(["docker", "exec", "-i", tls_lab.host.container, "sh", "-c", "rm -rf /root/bench && mkdir /root/bench && tar -C /root/bench -xf -"],
                   input=bundle, check=True)
    report = tls_lab.host.exec(
        "cd /root/bench/docker-bench-security && bash docker-bench-security.sh -b -c docker_daemon_configuration,container_runtime"
    ).stdout
    warned = set(re.findall(r"^\[WARN\] ([0-9]+\.[0-9]+) - ", report, re.M))
    print(f"docker-bench-security sections 2 and 5: {len(warned)} WARN items: {', '.join(sorted(warned, key=lambda i: [int(p) for p in i.split('.')]))}")
    assert "jupyter-alice" in report  # the member's server was benchmarked
    assert warned <= documented_warnings(), f"WARN without a reason in docs/hardening.md: {sorted(warned - documented_warnings())}\n{report}"
    stack = ("hub", "docker-api", "registry", "proxy", "lab")
    for lost in (*(f"root FS mounted R/W: jupyterhub-{name}-1" for name in stack), *(f"Health check not set: jupyterhub-{name}-1" for name in stack),
                 "Docker socket shared: jupyterhub-hub-1", "Privileges not restricted", "PIDs limit not set", "without memory restrictions",
                 "without CPU restrictions"):
        assert lost not in report, f"docker-bench-security: {lost}\n{report}"
