"""Logins strangers cannot abuse, on a hub test host of the module's own (files/login_guard.py):
an account nobody has claimed is claimed only with its member's setup code, before it ends;
quick wrong passwords for one name, or from one address, are answered 429 with Retry-After
after the limit, whatever the password, and the right one works again once the window has
passed; a forwarded-for header a client sets does not move it elsewhere; the hub's log names
each failure and its address, never a password; a member changes her own password from the
home page, a sysadmin resets one with one command; a burst of failures is named by the host
checks (so the nightly drift check alerts); and Chromium shows the lab's name, text and
contact on the login page."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from tests.harness import cli
from tests.harness.hosts import write_inventory
from tests.harness.hubclient import HubUser
from tests.harness.hublab import SHARE_CREDENTIALS, hub_data
from tests.harness.lab import write_secrets
from tests.test_browser import browser  # noqa: F401 (the fixture)

pytestmark = pytest.mark.hub

WINDOW, LIMIT = 20, 5  # short, so the test waits it out
LOGIN = {"lab_name": "Optics Lab", "text": "Your first login sets your password. <b>not bold</b>",
         "contact_email": "hub-admins@optics.example.org", "failed_limit": LIMIT, "failed_window": WINDOW, "alert_failures": 30}
ALICE = "alice-logins-test-1"
CODES: dict[str, str] = {}  # the members' setup codes, as the sysadmin hands them over
ADMIN = "docker exec -i jupyterhub-hub-1 python3 /srv/jupyterhub/login_admin.py"


def setup_codes(lab, *arguments: str) -> dict[str, str]:
    """The sysadmin's command: 'name  CODE  until ...' per member."""
    answer = lab.host.exec(f"{ADMIN} setup-code {' '.join(arguments)}")
    return {line.split()[0]: line.split()[1] for line in answer.stdout.splitlines()}


@pytest.fixture(scope="module")
def lab(own_hub_lab):
    data = hub_data()
    data["hub"] = {**data["hub"], "login": LOGIN}
    write_inventory(own_hub_lab.inventory, [(own_hub_lab.host, data)])
    write_secrets(own_hub_lab.inventory, SHARE_CREDENTIALS)
    cli.converge(own_hub_lab.inventory)
    own_hub_lab.wait_until_answering()
    CODES.update(setup_codes(own_hub_lab))  # every member who has not logged in yet
    assert HubUser(own_hub_lab.url).login("alice", ALICE, CODES["alice"])  # her first login sets it
    return own_hub_lab


def attempt(url: str, name: str, password: str, headers: dict | None = None, setup_code: str | None = None) -> tuple[int, dict]:
    """One login form sent; (status, headers with lower-case names and the page as "body") of
    the hub's answer, redirects not followed."""
    class Stay(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(Stay)
    # The same headers on the form's page: an anonymous form's XSRF token is bound to the
    # address tornado sees (X-Real-IP, when a client sends one).
    with opener.open(urllib.request.Request(f"{url}/hub/login", headers=headers or {}), timeout=30) as page:
        xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.read().decode()).group(1)
        cookie = "; ".join(value.split(";")[0] for key, value in page.headers.items() if key.lower() == "set-cookie")
    form = urllib.parse.urlencode({"username": name, "password": password, "_xsrf": xsrf, **({"otp": setup_code} if setup_code else {})}).encode()
    request = urllib.request.Request(f"{url}/hub/login", data=form, method="POST",
                                     headers={"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded", **(headers or {})})
    try:
        with opener.open(request, timeout=60) as answer:
            return answer.status, {**{key.lower(): value for key, value in answer.headers.items()}, "body": answer.read().decode()}
    except urllib.error.HTTPError as error:
        return error.code, {**{key.lower(): value for key, value in error.headers.items()}, "body": error.read().decode()}


def hub_log(lab, since: str) -> str:
    return lab.docker(f"logs --since {since} jupyterhub-hub-1 2>&1")


def now_on(lab) -> str:
    return lab.host.exec("date -u +%Y-%m-%dT%H:%M:%S.%NZ").stdout.strip()


def test_an_unclaimed_account_is_claimed_only_with_her_own_setup_code_before_it_ends(lab):
    began = now_on(lab)
    assert set(CODES) == {"alice", "bob", "carol"}, CODES
    for code in (None, "ABCD-EFGH-JKLM-NPQR", CODES["alice"]):  # none, a made-up one, another member's
        status, answer = attempt(lab.url, "carol", "strangers-password-1", setup_code=code)
        assert status == 403 and "type the setup code your lab" in answer["body"], (code, status)
        assert "Setup code (your first login only):" in answer["body"], "the login form asks for it"
    assert HubUser(lab.url).login("carol", "carols-own-password-1", CODES["carol"].lower().replace("-", " ")), "as she may type it"
    assert attempt(lab.url, "carol", "strangers-password-1", setup_code=CODES["carol"])[0] == 403, "used up: her password is set"
    # A code ends (hub.login.setup_code_days): bob's, as if its days had passed.
    lab.host.exec("docker exec jupyterhub-hub-1 python3 -c \"import json; p = '/srv/jupyterhub/data/setup-codes.json'; "
                  "codes = json.load(open(p)); codes['bob']['ends'] = 0; json.dump(codes, open(p, 'w'))\"")
    assert attempt(lab.url, "bob", "bob-before-the-reset-1", setup_code=CODES["bob"])[0] == 403
    CODES.update(setup_codes(lab, "bob"))  # a new one for him
    assert lab.host.exec("stat -c '%U %a' /var/lib/docker/volumes/jupyterhub_hub-data/_data/setup-codes.json").stdout.split() == ["root", "600"]
    stored = lab.host.exec("cat /var/lib/docker/volumes/jupyterhub_hub-data/_data/setup-codes.json").stdout
    assert set(json.loads(stored)) == {"bob"} and CODES["bob"] not in stored, "digests only; alice's and carol's used up"
    log = hub_log(lab, began)
    assert log.count("First login for 'carol' without a valid setup code") == 3 and CODES["carol"] not in log, log
    taken = lab.host.exec(f"{ADMIN} setup-code carol", check=False)
    assert taken.returncode != 0 and "carol: already logged in" in taken.stderr


def test_quick_wrong_passwords_get_429_after_the_limit_and_the_right_one_works_after_the_window(lab):
    began = now_on(lab)
    answers = [attempt(lab.url, "alice", f"wrong-guess-{n:02d}") for n in range(20)]
    statuses = [status for status, _ in answers]
    assert statuses[:LIMIT] == [403] * LIMIT and statuses[LIMIT:] == [429] * (20 - LIMIT), statuses
    waits = [int(headers["retry-after"]) for status, headers in answers if status == 429]
    assert all(0 < wait <= WINDOW for wait in waits), waits
    status, _ = attempt(lab.url, "alice", ALICE)
    assert status == 429, "throttled whatever the password: a guess is not even checked"
    log = hub_log(lab, began)
    assert log.count("Failed login for 'alice' from ") == LIMIT, log
    assert "Login refused for 'alice' from " in log and "too many failed logins" in log
    assert "wrong-guess" not in log and ALICE not in log, "never a password in the log"
    time.sleep(WINDOW + 1)
    status, headers = attempt(lab.url, "alice", ALICE)
    assert status == 302 and "/hub/" in headers.get("location", ""), (status, headers)


def test_one_address_is_throttled_across_names_and_a_forwarded_header_does_not_move_it(lab):
    time.sleep(WINDOW + 1)  # the window of the test before has passed
    statuses = []
    for n in range(4 * LIMIT + 2):  # a different name each time, and a made-up client address
        spoof = {"X-Forwarded-For": f"203.0.113.{n}", "X-Real-IP": f"198.51.100.{n}"}
        statuses.append(attempt(lab.url, f"guess{n:02d}", "wrong-password-1", spoof)[0])
    assert statuses[: 4 * LIMIT] == [403] * (4 * LIMIT) and statuses[4 * LIMIT:] == [429, 429], statuses
    time.sleep(WINDOW + 1)
    assert attempt(lab.url, "alice", ALICE)[0] == 302


def test_a_burst_of_failed_logins_is_named_by_the_host_checks_and_so_alerted(lab):
    """The tests before made 5 + 5 + 20 failures within minutes; 30 in 24 h is this lab's limit."""
    checks = cli.host_checks(lab.inventory, "-k", "failed_logins")
    assert checks.returncode == 1, checks.explain()
    assert "failed logins: expected fewer than 30 in 24 h (hub.login.alert_failures), found 30; most: 'alice' from " in checks.stdout, checks.stdout
    assert "wrong-guess" not in checks.output


def test_a_member_changes_her_own_password_from_the_home_page(lab):
    time.sleep(1)
    alice = HubUser(lab.url)
    assert alice.login("alice", ALICE)
    status, home = alice.request("GET", "/hub/home")
    assert status == 200 and 'href="/hub/auth/change-password"' in home
    status, page = alice.request("GET", "/hub/auth/change-password")
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page).group(1)
    form = urllib.parse.urlencode({"password": "alice-changed-password-2", "_xsrf": xsrf}).encode()
    status, page = alice.request("POST", "/hub/auth/change-password", form, {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 200 and "changed successfully" in page
    assert HubUser(lab.url).login("alice", "alice-changed-password-2")
    assert attempt(lab.url, "alice", ALICE)[0] == 403, "the old password no longer works"


def test_a_sysadmin_resets_a_forgotten_password_and_her_files_and_admin_rights_stay(lab):
    bob = HubUser(lab.url)
    assert bob.login("bob", "bob-before-the-reset-1", CODES["bob"])
    lab.host.exec("echo kept > /home/jupyter-bob/kept.txt")
    answer = lab.host.exec(f"{ADMIN} set-password bob", input="bob-after-the-reset-2\n")
    assert "bob's password is set" in answer.stdout and "bob-after-the-reset-2" not in answer.stdout + answer.stderr
    after = HubUser(lab.url)
    assert after.login("bob", "bob-after-the-reset-2")
    after.create_token("bob")
    assert json.loads(after.api("GET", "/hub/api/users/bob")[1])["admin"] is True
    assert attempt(lab.url, "bob", "bob-before-the-reset-1")[0] == 403, "the old password no longer works"
    assert lab.host.exec("cat /home/jupyter-bob/kept.txt").stdout.strip() == "kept"
    refused = lab.host.exec(f"{ADMIN} set-password mallory", input="x" * 12 + "\n", check=False)
    assert refused.returncode != 0 and "'mallory' is not a member of this lab" in refused.stderr


def test_a_stolen_claim_is_reset_with_a_new_setup_code_and_her_files_stay(lab):
    """Somebody set carol's password before she could (here: the test before's carol)."""
    lab.host.exec("echo kept > /home/jupyter-carol/kept.txt")
    new = setup_codes(lab, "--reset", "carol")
    assert set(new) == {"carol"} and new["carol"] != CODES["carol"]
    assert attempt(lab.url, "carol", "carols-own-password-1")[0] == 403, "the claimed password no longer works"
    assert attempt(lab.url, "carol", "carols-new-password-2")[0] == 403, "nor a first login without the new code"
    assert HubUser(lab.url).login("carol", "carols-new-password-2", new["carol"])
    assert lab.host.exec("cat /home/jupyter-carol/kept.txt").stdout.strip() == "kept"


def test_the_login_page_says_whose_lab_this_is_in_chromium(lab, browser):  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as shown
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(f"{lab.url}/hub/login")
    WebDriverWait(browser, 30).until(shown.presence_of_element_located((By.ID, "username_input")))
    announcement = browser.find_element(By.CSS_SELECTOR, ".announcement").text
    assert "Optics Lab" in announcement and "Your first login sets your password. <b>not bold</b>" in announcement, announcement
    assert "hub-admins@optics.example.org" in announcement
    link = browser.find_element(By.CSS_SELECTOR, ".announcement a")
    assert link.get_attribute("href") == "mailto:hub-admins@optics.example.org"
    assert not browser.find_elements(By.CSS_SELECTOR, ".announcement b"), "the lab's text is shown as text, not markup"
