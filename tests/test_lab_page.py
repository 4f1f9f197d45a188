"""The lab's page in the hub (/services/lab/, files/lab/app.py and files/labhub-lab-helper), on a
hub test host of the module's own with nightly backups on: alice, in headless Chromium, logs in
through the hub, sees her space and the nights of the backup, browses one and brings back a
file deleted since; it lands in ~/restored/<date>/, byte-identical and hers. bob may not see
her data, not even as an admin; paths leaving her home are refused and write nothing; restores
are rate-limited and must fit her free space. A member of a group whose data allows it brings
back a file of its folder; nobody else may. The admins' overview names every member with her
use, the backup's age and the repository's size, and the last drift check's findings; a member
who is not an admin gets 403. Screenshots of both views go to test-artifacts/."""

from __future__ import annotations

import json
import re
import time
import urllib.parse

import pytest

from tests.harness import cli
from tests.harness.hosts import write_inventory
from tests.harness.hubclient import HubUser
from tests.harness.hublab import SHARE_CREDENTIALS, hub_data
from tests.harness.lab import write_secrets
from tests.test_browser import ARTIFACTS, browser  # noqa: F401 (the fixture)

pytestmark = [pytest.mark.hub, pytest.mark.browser, pytest.mark.labpage]

BACKUP_PASSWORD = "Lab-Page-Restic-Pw-7!"
PASSWORDS = {"alice": "alice-lab-page-pw-1", "bob": "bob-lab-page-pw-2", "carol": "carol-lab-page-pw-3"}
HOME = "/home/jupyter-alice"
# alice's work, as the night's backup saw it: a notebook she will delete, a folder of 100 MB
# (the restore the note times), and a link out of her home she might have made.
ALICES_WORK = f"""
set -e
mkdir -p {HOME}/notebooks/figures {HOME}/simulation
head -c 300000 /dev/urandom > {HOME}/notebooks/thesis.ipynb
echo 'plot' > {HOME}/notebooks/figures/plot.py
for i in 1 2 3 4; do head -c 26214400 /dev/urandom > {HOME}/simulation/run-$i.bin; done
ln -sfn /home/jupyter-bob {HOME}/bobs-home
chown -hR jupyter-alice: {HOME}/notebooks {HOME}/simulation {HOME}/bobs-home
head -c 50000 /dev/urandom > /srv/groups/optics/results.csv && chown jupyter-alice /srv/groups/optics/results.csv
echo 'signed' > /srv/groups/ethics/consent.txt
"""
TIMES: dict[str, float] = {}


@pytest.fixture(scope="module")
def lab(own_hub_lab):
    data = hub_data()
    data["backup"] = {"enabled": True, "repository": "/srv/backup/labhub"}
    # optics lets its members restore its folder themselves; ethics does not (the default).
    data["groups"] = [{"name": "optics", "members": ["alice", "carol"], "members_restore": True}, {"name": "ethics", "members": ["alice"]}]
    write_inventory(own_hub_lab.inventory, [(own_hub_lab.host, data)])
    write_secrets(own_hub_lab.inventory, SHARE_CREDENTIALS, BACKUP_PASSWORD)
    results = cli.converge(own_hub_lab.inventory)
    assert "Lab page | Lab page's socket listening" in cli.changed_operations(results)[own_hub_lab.host.name], results
    own_hub_lab.wait_until_answering()
    for name, password in PASSWORDS.items():  # first logins set the passwords
        assert HubUser(own_hub_lab.url).login(name, password)
    own_hub_lab.host.exec(ALICES_WORK)
    own_hub_lab.host.exec("systemctl start labhub-backup")
    own_hub_lab.sha256 = own_hub_lab.host.exec(f"sha256sum < {HOME}/notebooks/thesis.ipynb").stdout.split()[0]
    own_hub_lab.results_sha256 = own_hub_lab.host.exec("sha256sum < /srv/groups/optics/results.csv").stdout.split()[0]
    own_hub_lab.host.exec(f"rm {HOME}/notebooks/thesis.ipynb /srv/groups/optics/results.csv /srv/groups/ethics/consent.txt")  # the next morning
    return own_hub_lab


def member(lab, name: str) -> HubUser:
    """A member logged in to the hub, with an API token of hers (the lab page accepts both)."""
    user = HubUser(lab.url)
    assert user.login(name, PASSWORDS[name])
    user.token = user.create_token(name)
    return user


def api(user: HubUser, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    status, text = user.request(method, f"/services/lab/api/{path}", body, headers={"Authorization": f"token {user.token}"})
    return status, json.loads(text) if text.startswith("{") else {"text": text}


def log_in(browser, lab, name: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as shown
    from selenium.webdriver.support.ui import WebDriverWait

    # Whoever was logged in before is not: WebDriver deletes the cookies of the page it shows,
    # so the page's own (path /services/lab/) and the hub's, after its logout.
    for page in ("/services/lab/health", "/hub/logout"):
        browser.get(lab.url + page)
        browser.delete_all_cookies()
    browser.get(f"{lab.url}/hub/login?next=/services/lab/")
    WebDriverWait(browser, 30).until(shown.presence_of_element_located((By.ID, "username_input")))
    browser.find_element(By.ID, "username_input").send_keys(name)
    browser.find_element(By.ID, "password_input").send_keys(PASSWORDS[name])
    browser.find_element(By.ID, "login_submit").click()
    # Through the hub's OAuth to the page, which sends a member to her own.
    WebDriverWait(browser, 60).until(shown.url_contains(f"/services/lab/members/{name}"))


def test_the_lab_page_is_in_the_hubs_services_menu_and_a_second_run_changes_nothing(lab):
    assert cli.changed_operations(cli.converge(lab.inventory)).get(lab.host.name, []) == []
    alice = member(lab, "alice")
    status, home = alice.request("GET", "/hub/home")
    assert status == 200 and "/services/lab/" in home, "the Services menu links the page"
    socket = lab.host.exec("stat -c '%U %a' /run/labhub-lab/helper.sock").stdout.split()
    assert socket == ["root", "600"]
    # The page's container has no repository password and no homes; members' servers cannot reach the socket.
    mounts = lab.docker("inspect --format '{{range .Mounts}}{{.Source}} {{end}}' jupyterhub-lab-1")
    assert "/run/labhub-lab" in mounts and "/home" not in mounts and "/etc/labhub" not in mounts
    assert lab.host.exec("docker exec jupyterhub-lab-1 sh -c 'env; ls /etc/labhub 2>&1'", check=False).stdout.count(BACKUP_PASSWORD) == 0


def test_alice_restores_a_deleted_notebook_from_the_lab_page_in_chromium(lab, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as shown
    from selenium.webdriver.support.ui import WebDriverWait

    log_in(browser, lab, "alice")
    WebDriverWait(browser, 60).until(shown.presence_of_element_located((By.ID, "space")))
    assert "1G of memory, 1.0 CPUs" in browser.find_element(By.ID, "limits").text
    assert "Your home holds 100." in browser.find_element(By.ID, "space").text, "du of her home (no quota on a container host)"
    shown_groups = [h.get_attribute("data-group") for h in browser.find_elements(By.CSS_SELECTOR, "#groups h3")]
    assert shown_groups == ["optics"], "her groups whose data lets members restore (not ethics)"
    member_page = browser.current_url
    browser.find_elements(By.CSS_SELECTOR, "a.group-snapshot")[0].click()  # optics' folder that night (carol restores from it below)
    WebDriverWait(browser, 60).until(shown.presence_of_element_located((By.CSS_SELECTOR, "tr[data-name='results.csv'] input[name='group']")))
    assert browser.find_element(By.TAG_NAME, "h1").text == "Group optics's folder as it was"
    browser.get(member_page)
    WebDriverWait(browser, 60).until(shown.presence_of_element_located((By.ID, "space")))
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "lab-member.png"))
    browser.find_elements(By.CSS_SELECTOR, "a.snapshot")[0].click()
    WebDriverWait(browser, 60).until(shown.presence_of_element_located((By.CSS_SELECTOR, "tr[data-name='notebooks'] a")))
    browser.find_element(By.CSS_SELECTOR, "tr[data-name='notebooks'] a").click()
    WebDriverWait(browser, 60).until(shown.presence_of_element_located((By.CSS_SELECTOR, "tr[data-name='thesis.ipynb']")))
    assert "notebooks" in browser.find_element(By.ID, "path").text
    browser.save_screenshot(str(ARTIFACTS / "lab-snapshot.png"))
    browser.find_element(By.CSS_SELECTOR, "tr[data-name='thesis.ipynb'] button").click()
    WebDriverWait(browser, 120).until(shown.presence_of_element_located((By.ID, "restored")))
    assert "restored 'notebooks/thesis.ipynb' of alice" in browser.find_element(By.ID, "restored").text

    restored = lab.host.exec(f"ls -d {HOME}/restored/*/notebooks/thesis.ipynb").stdout.strip()
    assert lab.host.exec(f"sha256sum < {restored}").stdout.split()[0] == lab.sha256
    assert lab.host.exec(f"stat -c '%U %G' {restored} {restored.rsplit('/notebooks', 1)[0]}").stdout.split() == ["jupyter-alice", "users"] * 2
    logs = lab.docker("logs jupyterhub-lab-1 2>&1")
    assert "POST /services/lab/members/alice/snapshots/" in logs and "user=alice" in logs, logs[-2000:]
    assert "code=" not in logs and BACKUP_PASSWORD not in logs


def test_bob_may_not_see_alices_files_and_paths_out_of_her_home_are_refused(lab, browser):
    from selenium.webdriver.common.by import By

    alice, bob = member(lab, "alice"), member(lab, "bob")
    status, mine = api(alice, "GET", "members/alice")
    assert status == 200 and mine["snapshots"] and mine["space"]["used"] > 100 * 2**20
    snapshot = mine["snapshots"][0]["id"]
    # bob, an admin of the hub, asks for alice's snapshots, files and a restore: 403 each.
    assert api(bob, "GET", "members/alice")[0] == 403
    assert api(bob, "GET", f"members/alice/snapshots/{snapshot}/files?path=notebooks")[0] == 403
    assert api(bob, "POST", "members/alice/restores", {"snapshot": snapshot, "path": "simulation"})[0] == 403
    log_in(browser, lab, "bob")
    browser.get(f"{lab.url}/services/lab/members/alice")
    assert "bob may see only their own files" in browser.find_element(By.ID, "error").text
    # alice herself: another member's home through '..', an absolute path, a link out of her home.
    before = lab.host.exec(f"find {HOME} /home/jupyter-bob | sort").stdout
    for path, says in (("../jupyter-bob", "leaves your home"), ("/etc", "is an absolute path"), ("notebooks/../../jupyter-bob", "leaves your home")):
        status, answer = api(alice, "GET", f"members/alice/snapshots/{snapshot}/files?path={urllib.parse.quote(path)}")
        assert status == 400 and says in answer["error"], (path, status, answer)
        status, answer = api(alice, "POST", "members/alice/restores", {"snapshot": snapshot, "path": path})
        assert status == 400 and says in answer["error"], (path, status, answer)
    status, answer = api(alice, "POST", "members/alice/restores", {"snapshot": snapshot, "path": "bobs-home"})
    assert status == 400 and "is a symbolic link out of her home" in answer["error"], answer
    assert lab.host.exec(f"find {HOME} /home/jupyter-bob | sort").stdout == before, "nothing was written"
    # A restore larger than her free space (here a 60 MiB filesystem over her home, as a quota
    # would leave her) is refused before restic runs; her real home, under it, is untouched.
    lab.host.exec(f"mount -t tmpfs -o size=60m,mode=700,uid=$(id -u jupyter-alice),gid=100 tmpfs {HOME}")
    try:
        status, answer = api(alice, "POST", "members/alice/restores", {"snapshot": snapshot, "path": "simulation"})
        assert (status, answer) == (400, {"error": "'simulation' needs 101 MiB and your home has 60 MiB free: make room first"})
        assert lab.host.exec(f"ls -A {HOME}").stdout == ""
    finally:
        lab.host.exec(f"umount {HOME}")


def test_a_member_of_a_group_that_allows_it_restores_a_file_of_its_folder_and_nobody_else_may(lab):
    alice, bob, carol = member(lab, "alice"), member(lab, "bob"), member(lab, "carol")
    status, mine = api(carol, "GET", "members/carol")
    assert status == 200 and [g["name"] for g in mine["groups"]] == ["optics"], mine
    snapshot = mine["snapshots"][0]["id"]
    status, listing = api(carol, "GET", f"members/carol/snapshots/{snapshot}/files?group=optics")
    assert status == 200 and "results.csv" in [e["name"] for e in listing["entries"]], listing
    # Refused: bob is not in optics; ethics does not let members restore; a path out of the folder.
    for who, name, group, path, says in ((bob, "bob", "optics", "results.csv", "bob is not a member of group 'optics'"),
                                        (alice, "alice", "ethics", "consent.txt", "group 'ethics' has no folder whose members restore it themselves"),
                                        (carol, "carol", "optics", "../ethics", "leaves group optics's folder")):
        status, answer = api(who, "GET", f"members/{name}/snapshots/{snapshot}/files?group={group}&path={urllib.parse.quote(path)}")
        assert status == 400 and says in answer["error"], (name, group, path, status, answer)
        status, answer = api(who, "POST", f"members/{name}/restores", {"snapshot": snapshot, "path": path, "group": group})
        assert status == 400 and says in answer["error"], (name, group, path, status, answer)
    assert lab.host.exec("ls -A /srv/groups/ethics").stdout == "", "nothing was written"
    # carol brings back the file alice made: into the folder's restored/<date>/, hers and the group's.
    status, answer = api(carol, "POST", "members/carol/restores", {"snapshot": snapshot, "path": "results.csv", "group": "optics"})
    assert status == 200 and "into /srv/groups/optics/restored/" in answer["message"], answer
    restored = lab.host.exec("ls -d /srv/groups/optics/restored/*/results.csv").stdout.strip()
    assert lab.host.exec(f"sha256sum < {restored}").stdout.split()[0] == lab.results_sha256
    assert lab.host.exec(f"stat -c '%U %G' {restored}").stdout.split() == ["jupyter-carol", "lab-optics"]


def test_a_100_mb_folder_comes_back_and_restores_are_rate_limited(lab):
    alice = member(lab, "alice")
    snapshot = api(alice, "GET", "members/alice")[1]["snapshots"][0]["id"]
    started = time.monotonic()
    status, listing = api(alice, "GET", f"members/alice/snapshots/{snapshot}/files?path=simulation")
    TIMES["list one folder of a snapshot (s)"] = round(time.monotonic() - started, 2)
    assert status == 200 and sorted(e["name"] for e in listing["entries"]) == [f"run-{i}.bin" for i in range(1, 5)]
    started = time.monotonic()
    status, answer = api(alice, "POST", "members/alice/restores", {"snapshot": snapshot, "path": "simulation"})
    TIMES["restore a 100 MB folder (s)"] = round(time.monotonic() - started, 2)
    assert status == 200 and "4 file(s)" in answer["message"], answer
    assert lab.host.exec(f"cd {HOME} && sha256sum simulation/* | sha256sum").stdout == lab.host.exec(f"cd {HOME}/restored/* && sha256sum simulation/* | sha256sum").stdout
    (ARTIFACTS / "lab-page-times.json").write_text(json.dumps(TIMES, indent=1) + "\n")
    # Again and again: refused as there (nothing overwritten), until the hour's limit (10) is used up.
    answers = [api(alice, "POST", "members/alice/restores", {"snapshot": snapshot, "path": "notebooks/figures"}) for _ in range(10)]
    # (Every restore that reached restic counts: the notebook, the link refused above, the folder.)
    said = ["ok" if status == 200 else a["error"] for status, a in answers]
    assert said[0] == "ok" and said[-1].startswith("10 restores an hour at most: the next one in"), said
    refused_as_there = [s for s in said[1:] if "exists already" in s]
    assert refused_as_there and said[1:] == refused_as_there + [said[-1]] * (len(said) - 1 - len(refused_as_there)), said


def test_the_admins_overview_names_every_member_the_backup_and_the_drift_checks_verdict_and_refuses_members(lab, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as shown
    from selenium.webdriver.support.ui import WebDriverWait

    assert api(member(lab, "carol"), "GET", "admin") == (403, {"error": "the lab overview is for the hub's admins"})
    # A night's drift check that found a credentials file left readable. This host is not its
    # control host (drift.enabled would install the project here), so the report the nightly
    # unit writes into drift.report_dir is put there from a real run of the check.
    lab.host.exec("chmod 644 /etc/labhub/credentials/data")
    try:
        run = cli.drift_check(lab.inventory, "--report-dir", str(tmp_path))
        assert run.returncode == 2, run.explain()
    finally:
        lab.host.exec("chmod 600 /etc/labhub/credentials/data")
    lab.host.exec("mkdir -p /var/lib/labhub/drift/night && cat > /var/lib/labhub/drift/night/drift.json", input=(tmp_path / "drift.json").read_text())
    status, overview = api(member(lab, "bob"), "GET", "admin")
    assert status == 200 and overview["backup"]["age_hours"] < 1
    assert overview["backup"]["repository_bytes"] > 100 * 2**20, overview["backup"]  # her 100 MB of random bytes, stored once
    assert overview["certificate"] is None, "plain HTTP here: test_tls reads a served certificate's end date"
    drift = overview["drift"]
    assert drift["status"] == "drifted" and [h["name"] for h in drift["hosts"]] == [lab.host.name], drift
    assert any(f.startswith("/etc/labhub/credentials/data: expected") for f in drift["hosts"][0]["findings"]), drift
    homes = {m["name"]: m for m in overview["members"]}
    assert set(homes) >= {"alice", "bob", "carol"} and homes["alice"]["home"]["used"] > 100 * 2**20
    log_in(browser, lab, "bob")
    browser.get(f"{lab.url}/services/lab/admin")
    WebDriverWait(browser, 60).until(shown.presence_of_element_located((By.ID, "members")))
    assert "hours ago" in browser.find_element(By.ID, "backup-age").text
    assert browser.find_element(By.ID, "drift-status").text == "drifted"
    assert "/etc/labhub/credentials/data: expected" in browser.find_element(By.ID, "drift-hosts").text
    row = browser.find_element(By.CSS_SELECTOR, "tr[data-member='alice']").text
    used = re.search(r"([0-9.]+) MiB \(no quota\)", row)
    assert used and float(used.group(1)) > 200 and ("stopped" in row or "running" in row), row  # her work and what she restored
    browser.save_screenshot(str(ARTIFACTS / "lab-admin.png"))
    log_in(browser, lab, "carol")
    browser.get(f"{lab.url}/services/lab/admin")
    assert "for the hub's admins" in browser.find_element(By.ID, "error").text


def test_a_stopped_helper_is_drift_that_a_deploy_clears(lab, tmp_path):
    lab.host.exec("systemctl stop labhub-lab.socket")
    run = cli.drift_check(lab.inventory, "--report-dir", str(tmp_path))
    assert run.returncode == 2, run.explain()
    assert "labhub-lab.socket: expected enabled and active, found enabled and inactive" in run.stdout, run.stdout
    assert cli.changed_operations(cli.converge(lab.inventory))[lab.host.name] == ["Lab page | Lab page's socket listening"]
    assert cli.drift_check(lab.inventory).returncode == 0
    alice = member(lab, "alice")
    assert api(alice, "GET", "members/alice")[0] == 200, "the page reaches the host again"
