"""Research groups on the hub's test host (the session's hub_lab, with groups added to its
data): the host groups and setgid folders, members sharing files through their folder,
nobody else seeing it, group images in members' spawn forms only (the API refuses them to
others), a group's larger memory limit, a GPU request reaching Docker, and a member moved
out of a group: the host group and JupyterHub's group follow data at once, the drift check
names the server that still mounts the folder, and a restart takes it away. Cases run in
order; the module puts hub_lab's data back when it is done."""

from __future__ import annotations

import json
import time

import pytest

from tests.harness import cli
from tests.harness.hosts import write_inventory
from tests.harness.hubclient import HubUser
from tests.harness.hublab import SHARE_CREDENTIALS, hub_data
from tests.harness.lab import write_secrets

pytestmark = [pytest.mark.hub, pytest.mark.groups]

MEMBERS = ["dave", {"name": "erin", "admin": True}, "frank", "gina"]  # frank is in no group
PASSWORDS = {"dave": "dave-first-login-4", "erin": "erin-first-login-5", "frank": "frank-first-login-6", "gina": "gina-first-login-7"}
FOLDER = "/srv/groups/optics"
SHARE_FOLDER = "/mnt/analysis/groups/survey"


def group_data(optics_members: list[str]) -> dict:
    data = hub_data()
    notebook = data["hub"]["images"][0]
    data["users"] = [*data["users"], *MEMBERS]
    data["nvidia_gpus"] = True  # marked, so validation lets theory ask; the runner has no GPU
    data["groups"] = [
        {"name": "optics", "members": optics_members, "mem_limit": "1536M",
         "images": [{"name": "optics", "display_name": "Optics toolkit", "build_args": {**notebook["build_args"], "LAB_GROUP": "optics"}}]},
        {"name": "theory", "members": ["gina"], "gpus": 1},
        # On the analysis share (its file server stood in for by a bind mount, hublab.FILE_SERVER)
        {"name": "survey", "members": ["erin"], "folder": SHARE_FOLDER},
    ]
    return data


def converge_with(hub_lab, data: dict) -> list[str]:
    write_inventory(hub_lab.inventory, [(hub_lab.host, data)])
    write_secrets(hub_lab.inventory, SHARE_CREDENTIALS)
    return cli.changed_operations(cli.converge(hub_lab.inventory)).get(hub_lab.host.name, [])


@pytest.fixture(scope="module")
def groups_lab(hub_lab):
    # Servers of earlier modules (carol's, from test_browser) predate the groups: they would
    # rightly be drift (another group's folder on a share not covered) until they restart.
    hub_lab.host.exec("docker ps -q --filter name=^jupyter- | xargs -r docker stop >/dev/null")
    started = time.monotonic()
    changed = converge_with(hub_lab, group_data(["dave", "erin"]))
    print(f"converge adding two groups (a group image built): {time.monotonic() - started:.0f} s")
    users = {}
    for name, password in PASSWORDS.items():
        users[name] = HubUser(hub_lab.url)
        assert users[name].login(name, password), f"{name}'s first login"
        users[name].create_token(name)
    yield hub_lab, changed, users
    for name, user in users.items():
        user.api("DELETE", f"/hub/api/users/{name}/server")
    hub_lab.host.exec("for c in $(docker ps -q --filter name=^jupyter-); do docker stop $c; done >/dev/null", check=False)
    assert converge_with(hub_lab, hub_data()), "hub_lab's own data back"


def host_members(host, group: str) -> list[str]:
    return sorted(host.exec(f"getent group {group} | cut -d: -f4").stdout.strip().split(",")) if group else []


def test_groups_get_a_host_group_of_their_members_and_a_setgid_folder(groups_lab):
    hub_lab, changed, _ = groups_lab
    assert "Groups | host groups of exactly their members" in changed and "Groups | group folders (setgid, 2770)" in changed
    assert host_members(hub_lab.host, "lab-optics") == ["jupyter-dave", "jupyter-erin"]
    assert host_members(hub_lab.host, "lab-theory") == ["jupyter-gina"]
    assert hub_lab.host.exec(f"stat -c '%U %G %a' {FOLDER}").stdout.split() == ["root", "lab-optics", "2770"]
    assert cli.changed_operations(cli.converge(hub_lab.inventory)) == {}
    assert cli.dry_plan(hub_lab.inventory) == {}


def test_members_share_files_in_their_folder_and_nobody_else_sees_it(groups_lab):
    hub_lab, _, users = groups_lab
    for name in ("dave", "erin", "frank"):
        users[name].server = users[name].start_server(name)
    assert users["dave"].write("dave", f"{FOLDER[1:]}/spectra.csv", "wavelength,intensity\n")[0] == 201
    # setgid: the file belongs to the group, and the group may write it (umask 022: read)
    owner = hub_lab.host.exec(f"stat -c '%U %G' {FOLDER}/spectra.csv").stdout.split()
    assert owner == ["jupyter-dave", "lab-optics"]
    assert users["erin"].read("erin", f"{FOLDER[1:]}/spectra.csv") == (200, "wavelength,intensity\n")
    assert users["erin"].write("erin", f"{FOLDER[1:]}/erin.txt", "from erin")[0] == 201
    status, _ = users["frank"].read("frank", f"{FOLDER[1:]}/spectra.csv")
    assert status == 404, "frank's server has no optics folder"
    frank = json.loads(hub_lab.docker("inspect jupyter-frank"))[0]
    assert FOLDER not in {m["Source"] for m in frank["Mounts"]}
    # and on the host, the folder is closed to accounts outside the group
    refused = hub_lab.host.exec(f"runuser -u jupyter-frank -- ls {FOLDER}", check=False)
    assert refused.returncode != 0 and "Permission denied" in refused.stderr


def test_a_group_folder_on_a_share_is_made_there_and_covered_for_others(groups_lab):
    hub_lab, _, users = groups_lab
    assert hub_lab.host.exec("test -d /srv/fileserver/analysis/groups/survey", check=False).returncode == 0, "made on the share"
    hub_lab.host.exec(f"echo 'survey plan' > {SHARE_FOLDER}/plan.txt; echo 'for everyone' > /mnt/analysis/everyone.txt")
    assert users["erin"].read("erin", f"{SHARE_FOLDER[1:]}/plan.txt") == (200, "survey plan\n")
    status, answer = users["frank"].read("frank", f"{SHARE_FOLDER[1:]}/plan.txt")
    assert status >= 400 and "survey plan" not in str(answer), "frank's server has the folder covered"
    status, listing = users["frank"].api("GET", f"/user/frank/api/contents/{SHARE_FOLDER[1:]}")
    assert status >= 400 and "plan.txt" not in listing, f"frank cannot list the covered folder: {status} {listing[:300]}"
    assert users["frank"].write("frank", f"{SHARE_FOLDER[1:]}/mine.txt", "x")[0] >= 400, "and cannot write into the cover"
    assert users["frank"].read("frank", "mnt/analysis/everyone.txt") == (200, "for everyone\n"), "the rest of the share is his as before"
    frank = json.loads(hub_lab.docker("inspect jupyter-frank"))[0]["HostConfig"]
    assert frank["Tmpfs"] == {SHARE_FOLDER: "ro,size=4k,mode=0700", "/tmp": f"rw,nosuid,nodev,size={512 * 1024**2},mode=1777"}, "and /tmp is his, bounded"


def test_group_images_are_offered_to_members_and_refused_to_others(groups_lab):
    hub_lab, _, users = groups_lab
    users["dave"].api("DELETE", "/hub/api/users/dave/server")
    wait_stopped(users["dave"], "dave")
    status, form = users["dave"].request("GET", "/hub/spawn/dave")
    assert status == 200 and "Optics toolkit" in form, "dave's spawn form offers his group's image"
    users["dave"].server = users["dave"].start_server("dave", {"image": "Optics toolkit"})
    assert hub_lab.docker("inspect --format '{{.Config.Image}}' jupyter-dave").startswith("localhost:5000/optics:")
    # frank (no group) asks the API for it: refused, his server is not started from it
    users["frank"].api("DELETE", "/hub/api/users/frank/server")
    wait_stopped(users["frank"], "frank")
    users["frank"].api("POST", "/hub/api/users/frank/server", {"image": "Optics toolkit"})
    wait_stopped(users["frank"], "frank")
    images = hub_lab.docker("ps -a --filter name=^jupyter-frank$ --format '{{.Image}}'").split()
    assert not any(image.startswith("localhost:5000/optics:") for image in images)
    assert "Image Optics toolkit not in allowed list" in hub_lab.docker("logs --since 2m jupyterhub-hub-1 2>&1")


def test_a_groups_limits_and_folders_apply_to_its_members_servers(groups_lab):
    hub_lab, _, _ = groups_lab
    dave = json.loads(hub_lab.docker("inspect jupyter-dave"))[0]["HostConfig"]
    erin = json.loads(hub_lab.docker("inspect jupyter-erin"))[0]["HostConfig"]
    gid = hub_lab.host.exec("getent group lab-optics | cut -d: -f3").stdout.strip()
    assert dave["Memory"] == erin["Memory"] == 1536 * 1024**2, "optics: mem_limit 1536M instead of the hub's 1G"
    assert dave["GroupAdd"] == [gid], "the server's user is in lab-optics"
    assert dave["CapDrop"] == ["ALL"] and dave["PidsLimit"] == 1024, "the hub's hardening stays"


def test_a_gpu_request_reaches_docker_as_a_device_request(groups_lab):
    """No GPU here: Docker refuses the request for NVIDIA devices, which shows it was made."""
    hub_lab, _, users = groups_lab
    users["gina"].api("POST", "/hub/api/users/gina/server")  # 500 once the start fails, or 202 while it is slow
    wait_stopped(users["gina"], "gina")
    log = hub_lab.docker("logs --since 2m jupyterhub-hub-1 2>&1")
    assert 'could not select device driver "nvidia" with capabilities: [[gpu]]' in log, log[-2000:]


def test_a_member_moved_out_loses_the_folder_at_the_next_start_and_drift_names_the_server(groups_lab, tmp_path):
    hub_lab, _, users = groups_lab
    users["dave"].api("DELETE", "/hub/api/users/dave/server")
    wait_stopped(users["dave"], "dave")
    users["dave"].server = users["dave"].start_server("dave")
    changed = converge_with(hub_lab, group_data(["erin"]))
    assert "Groups | host groups of exactly their members" in changed
    assert host_members(hub_lab.host, "lab-optics") == ["jupyter-erin"]
    status, group = users["erin"].api("GET", "/hub/api/groups/optics")
    assert status == 200 and json.loads(group)["users"] == ["erin"], "JupyterHub's group follows data"
    run = cli.drift_check(hub_lab.inventory, "--host", hub_lab.host.name, "--report-dir", str(tmp_path))
    assert run.returncode == 2, run.explain()
    assert f"container jupyter-dave: expected the folders of dave's groups only (none), found {FOLDER} mounted too" in run.stdout
    users["dave"].api("DELETE", "/hub/api/users/dave/server")
    wait_stopped(users["dave"], "dave")
    try:
        users["dave"].server = users["dave"].start_server("dave")
    except AssertionError as refused:  # seen once in a full run (a 500): the hub's log says why
        raise AssertionError(f"{refused}\n{hub_lab.docker('logs --since 3m jupyterhub-hub-1 2>&1')[-3000:]}") from None
    assert FOLDER not in {m["Source"] for m in json.loads(hub_lab.docker("inspect jupyter-dave"))[0]["Mounts"]}
    checks = cli.host_checks(hub_lab.inventory)
    assert checks.returncode == 0, checks.explain()


def wait_stopped(user: HubUser, name: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while json.loads(user.api("GET", f"/hub/api/users/{name}")[1]).get("servers", {}).get(""):
        assert time.monotonic() < deadline, f"{name}'s server did not stop"
        time.sleep(1)
