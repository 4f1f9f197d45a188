"""The JupyterHub + registry stack end to end, on a container test host with a nested Docker
engine: real JupyterHub, real registry, real spawns, driven over HTTP as a user would. The
stack is built from image archives (no registry is reachable here) with this machine's CA
certificates, as an offline lab behind a TLS-inspecting proxy. Cases run in order."""

from __future__ import annotations

import json
import shlex
import time

import pytest

from labhub.ops.shell import q
from tests.harness import cli
from tests.harness.hubclient import HubUser
from tests.harness.hosts import write_inventory
from tests.harness.hublab import SHARE_CREDENTIALS, hub_data
from tests.harness.images import JUPYTERHUB_VERSION
from tests.harness.lab import write_secrets

pytestmark = pytest.mark.hub

ALICE_PASSWORD = "alice-first-login-7"
CAROL_PASSWORD = "carol-in-the-browser-1"  # as test_browser.py sets it, when it runs first
NOTEBOOK_IMAGE_PREFIX = "localhost:5000/notebook:"
HUB_DATA = "/var/lib/docker/volumes/jupyterhub_hub-data/_data"  # the hub's volume, seen from the host


def converge_with(hub_lab, change: dict) -> list[str]:
    data = hub_data()
    data["hub"] = {**data["hub"], **change}
    write_inventory(hub_lab.inventory, [(hub_lab.host, data)])
    write_secrets(hub_lab.inventory, SHARE_CREDENTIALS)
    return cli.changed_operations(cli.converge(hub_lab.inventory)).get(hub_lab.host.name, [])


def notebook_images(hub_lab) -> list[str]:
    """The lab's notebook images on the host, every tag built."""
    return [ref for ref in hub_lab.docker("images --format '{{.Repository}}:{{.Tag}}'").split() if ref.startswith(NOTEBOOK_IMAGE_PREFIX)]


@pytest.fixture(scope="module")
def alice(hub_lab):
    user = HubUser(hub_lab.url)
    assert user.login("alice", ALICE_PASSWORD), "alice's first login sets her password"
    user.create_token("alice")
    user.server = user.start_server("alice")
    return user


def test_a_fresh_converge_brings_up_hub_registry_and_images(hub_lab):
    changed = cli.changed_operations(hub_lab.first_run)[hub_lab.host.name]
    for operation in ("JupyterHub | Image archives loaded", "JupyterHub | Stack files",
                      "JupyterHub | Hub and registry up and answering", "JupyterHub | Notebook images in the registry"):
        assert operation in changed
    print(f"fresh converge with the stack: {hub_lab.first_run_seconds:.0f} s")
    running = sorted(hub_lab.docker("ps --format '{{.Names}}' --filter name=jupyterhub-").split())
    assert running == ["jupyterhub-docker-api-1", "jupyterhub-hub-1", "jupyterhub-registry-1"]
    catalog = json.loads(hub_lab.host.exec("curl -s http://127.0.0.1:5000/v2/_catalog").stdout)
    assert "notebook" in catalog["repositories"]  # test_groups.py, when it ran first, adds its group's image


def test_the_site_ca_is_trusted_by_the_host_and_inside_the_images(hub_lab):
    ca_files = hub_data()["extra_ca_certificates"]
    installed = hub_lab.host.exec("ls /usr/local/share/ca-certificates/labhub").stdout.split()
    assert len(installed) == len(ca_files)
    image = notebook_images(hub_lab)[0]
    inside = hub_lab.docker(f"run --rm --entrypoint ls {image} /usr/local/share/ca-certificates/labhub").split()
    assert sorted(inside) == sorted(installed)
    # The hub's image installed DockerSpawner & co. from PyPI through the inspecting proxy.
    assert "dockerspawner" in hub_lab.docker("exec jupyterhub-hub-1 python3 -m pip list --format freeze").lower()


def test_the_notebook_image_leaves_out_the_slow_iri_check_its_base_has(hub_lab):
    """files/images/notebook/Dockerfile removes rfc3987-syntax (0.8 s of CPU at every server
    start); the stand-in base image has it, as current Jupyter images do."""
    image = notebook_images(hub_lab)[0]
    probe = "import importlib.util as u, jupyter_events.logger; print(u.find_spec('rfc3987_syntax') is None)"
    base = hub_data()["hub"]["images"][0]["build_args"]["BASE_IMAGE"]
    assert hub_lab.docker(f'run --rm --entrypoint python3 {base} -c "{probe}"').split() == ["False"], "the base image has it"
    assert hub_lab.docker(f'run --rm --entrypoint python3 {image} -c "{probe}"').split() == ["True"], "the lab's image does not"


def test_a_server_compiles_no_module_at_start_though_its_base_has_stale_bytecode(hub_lab):
    """files/images/notebook/Dockerfile compiles the image's Python once: a member's server
    runs as a UID that cannot write __pycache__, so stale bytecode would be compiled again
    at every start (4.2 s of CPU instead of 1.4). The stand-in base has it stale for most
    of Jupyter, as an image built with clamped timestamps does."""
    def compiled_at_start(image: str) -> int:  # modules a server's imports load from source
        probe = "import jupyterhub.singleuser, jupyterlab.labapp"
        trace = hub_lab.docker(f'run --rm --user 4242:4242 -e HOME=/tmp --entrypoint python3 {image} -v -c "{probe}" 2>&1')
        return sum(line.startswith("# code object from /") and line.endswith(".py") for line in trace.splitlines())

    base = hub_data()["hub"]["images"][0]["build_args"]["BASE_IMAGE"]
    assert compiled_at_start(base) > 500, "the stand-in base has stale bytecode"
    assert compiled_at_start(notebook_images(hub_lab)[0]) == 0, "the lab's image has none"


def test_a_second_run_changes_nothing_and_the_dry_run_plans_nothing(hub_lab):
    started = time.monotonic()
    results = cli.converge(hub_lab.inventory)
    seconds = time.monotonic() - started
    assert cli.changed_operations(results) == {}
    assert cli.dry_plan(hub_lab.inventory) == {}
    print(f"no-op re-run with the stack in place: {seconds:.1f} s")


def test_a_listed_user_logs_in_and_works_in_her_home_and_on_the_shares(hub_lab, alice):
    assert alice.read("alice", "mnt/data/readme.txt") == (200, "measurements from the beamline\n")
    status, _ = alice.write("alice", "mnt/data/mine.txt", "not allowed")
    assert status >= 400, "the read-only share refuses writes"
    assert hub_lab.host.exec("test -e /srv/fileserver/data/mine.txt", check=False).returncode != 0
    assert alice.write("alice", "mnt/analysis/result.txt", "from the hub")[0] == 201
    assert alice.write("alice", "home/jupyter-alice/notes.txt", "in my home")[0] == 201
    uid_gid = hub_lab.host.exec("id -u jupyter-alice; id -g jupyter-alice").stdout.split()
    owners = hub_lab.host.exec("stat -c '%u %g' /home/jupyter-alice/notes.txt /srv/fileserver/analysis/result.txt").stdout.splitlines()
    assert owners == [" ".join(uid_gid)] * 2, "files belong to jupyter-alice on the host"
    assert hub_lab.host.exec("cat /srv/fileserver/analysis/result.txt").stdout == "from the hub"


def test_the_users_container_runs_as_her_host_account_without_privileges(hub_lab, alice):
    server = json.loads(hub_lab.docker("inspect jupyter-alice"))[0]
    uid_gid = ":".join(hub_lab.host.exec("id -u jupyter-alice; id -g jupyter-alice").stdout.split())
    assert server["Config"]["User"] == uid_gid
    assert server["Config"]["Image"].startswith(NOTEBOOK_IMAGE_PREFIX)
    assert server["HostConfig"]["Privileged"] is False and server["HostConfig"]["CapDrop"] == ["ALL"]
    assert server["HostConfig"]["Memory"] == 1024**3, "mem_limit 1G"
    assert server["HostConfig"]["CpuShares"] == 128, "a server yields to the hub under contention"
    assert server["HostConfig"]["CpuQuota"] / server["HostConfig"]["CpuPeriod"] == 1.0, "cpu_limit 1.0 (DockerSpawner sets a CPU quota)"
    mounts = {m["Destination"]: m["RW"] for m in server["Mounts"]}
    assert mounts == {"/home/jupyter-alice": True, "/mnt/data": False, "/mnt/analysis": True}, "no Docker socket"
    assert hub_lab.docker("network inspect jupyterhub --format '{{range .Containers}}{{.Name}} {{end}}'").split().count("jupyter-alice") == 1


def in_her_server(hub_lab, script: str, check: bool = True):
    """A shell script as alice's UID on her running server's files: $R is its root, reached
    through /proc/<pid>/root (docker exec into a member's server fails on these test hosts,
    "error executing setns process", TESTING-ENVIRONMENT.md)."""
    return hub_lab.host.exec(
        "export R=/proc/$(docker inspect -f '{{.State.Pid}}' jupyter-alice)/root && "
        f"setpriv --reuid $(id -u jupyter-alice) --regid $(id -g jupyter-alice) --clear-groups sh -c {shlex.quote(script)}", check=check)


def test_her_tmp_is_bounded_within_her_memory_and_her_writable_layer_is_measured(hub_lab, alice, tmp_path):
    """/tmp: a tmpfs of half her memory limit (1G here), so scratch files end in 'No space left
    on device' for her alone, never on the host's disk. What she writes elsewhere outside her
    home (the container's writable layer) is named by the host checks past hub.server_layer_limit."""
    kind, blocks, block_size = in_her_server(hub_lab, 'stat -f -c "%T %b %S" "$R/tmp"').stdout.split()  # df: the caller's mounts only
    assert (kind, int(blocks) * int(block_size)) == ("tmpfs", 512 * 1024**2)
    disk_before = int(hub_lab.host.exec("df -B1 --output=used /var/lib/docker | tail -n 1").stdout)
    filled = in_her_server(hub_lab, 'dd if=/dev/zero of="$R/tmp/fill" bs=1M count=600', check=False)
    assert filled.returncode != 0 and "No space left on device" in filled.stderr, filled.stderr
    assert int(hub_lab.host.exec("df -B1 --output=used /var/lib/docker | tail -n 1").stdout) - disk_before < 100 * 1024**2, "not the host's disk"
    in_her_server(hub_lab, 'rm "$R/tmp/fill" && dd if=/dev/zero of="$R/var/tmp/layer" bs=1M count=40 2>/dev/null')
    try:
        data = hub_data()
        data["hub"]["server_layer_limit"] = "20M"  # read by the host checks only
        inventory = write_inventory(tmp_path / "layer_limit.py", [(hub_lab.host, data)])
        write_secrets(inventory, SHARE_CREDENTIALS)
        checks = cli.host_checks(inventory, "-k", "write_little_outside or run_as_their_host_account")
        assert checks.returncode == 1, checks.explain()
        assert "members' servers: expected at most 20M written outside the home (hub.server_layer_limit), found jupyter-alice 4" in checks.stdout
        assert "PASSED labhub/checks/test_hub.py::test_users_servers_run_as_their_host_account_unprivileged" in checks.stdout, "/tmp bounded"
    finally:
        in_her_server(hub_lab, 'rm -f "$R/var/tmp/layer"')


def test_unlisted_names_and_case_variants_are_refused(hub_lab, alice):
    assert not HubUser(hub_lab.url).login("mallory", "mallory-password-1"), "an unlisted name is refused"
    assert not HubUser(hub_lab.url).login("ALICE", "another-password-2"), "a case variant cannot set a new password"
    assert not HubUser(hub_lab.url).login("Alice", "another-password-3")
    same = HubUser(hub_lab.url)
    assert same.login("Alice", ALICE_PASSWORD) and same.whoami() == "alice", "names are lower-cased: it is alice"
    assert HubUser(hub_lab.url).login("alice", ALICE_PASSWORD), "alice's password is unchanged"


def test_only_images_of_the_allow_list_are_started(hub_lab):
    bob = HubUser(hub_lab.url)
    assert bob.login("bob", "bob-first-login-8")
    bob.create_token("bob")
    forbidden = "labhub-test/jupyterhub:5.4.3"  # present on the host, but not in the allow-list
    status, _ = bob.api("POST", "/hub/api/users/bob/server", {"image": forbidden})
    deadline = time.monotonic() + 120
    server = None
    while status < 400:  # the spawn runs in the background: wait for its outcome
        server = json.loads(bob.api("GET", "/hub/api/users/bob")[1]).get("servers", {}).get("")
        if not server or not server.get("pending"):
            break
        assert time.monotonic() < deadline, "bob's spawn neither started nor failed"
        time.sleep(1)
    images = hub_lab.docker("ps -a --filter name=^jupyter-bob$ --format '{{.Image}}'").split()
    assert forbidden not in images, "a user chose an image outside the allow-list"
    if server and server.get("ready"):  # the request's image was not taken: the default was
        assert images and all(image.startswith(NOTEBOOK_IMAGE_PREFIX) for image in images)
        assert bob.api("DELETE", "/hub/api/users/bob/server")[0] in (202, 204)


def test_a_hub_restart_keeps_servers_running_and_users_logged_in(hub_lab, alice):
    server_started = hub_lab.docker("inspect --format '{{.State.StartedAt}}' jupyter-alice")
    hub_lab.docker("restart jupyterhub-hub-1")
    deadline = time.monotonic() + 120
    while alice.request("GET", "/hub/health")[0] != 200:
        assert time.monotonic() < deadline, "the hub did not come back"
        time.sleep(1)
    assert alice.whoami() == "alice", "the session cookie survived the restart (persistent cookie secret)"
    assert hub_lab.docker("inspect --format '{{.State.StartedAt}}' jupyter-alice") == server_started
    deadline = time.monotonic() + 60
    while alice.read("alice", "home/jupyter-alice/notes.txt")[0] != 200:  # the proxy's routes come back
        assert time.monotonic() < deadline, "alice's server is not reachable after the hub restart"
        time.sleep(1)
    assert alice.read("alice", "home/jupyter-alice/notes.txt") == (200, "in my home")


def test_a_hub_setting_change_recreates_the_hub_only(hub_lab, alice):
    hub_id, registry_id = hub_lab.docker("inspect --format '{{.Id}}' jupyterhub-hub-1"), hub_lab.docker("inspect --format '{{.Id}}' jupyterhub-registry-1")
    changed = converge_with(hub_lab, {"idle_timeout": 7200})
    assert changed == ["JupyterHub | Stack files", "JupyterHub | Hub and registry up and answering"]
    assert hub_lab.docker("inspect --format '{{.Id}}' jupyterhub-hub-1") != hub_id
    assert hub_lab.docker("inspect --format '{{.Id}}' jupyterhub-registry-1") == registry_id
    processes = hub_lab.docker("exec jupyterhub-hub-1 sh -c 'cat /proc/[0-9]*/cmdline | tr \"\\\\0\" \" \"'")
    assert "jupyterhub_idle_culler --timeout=7200" in processes
    assert hub_lab.docker("inspect --format '{{.State.Status}}' jupyter-alice") == "running"
    assert converge_with(hub_lab, {"idle_timeout": 7200}) == []


def test_with_native_accounts_members_sign_up_a_person_approves_and_others_stay_out(hub_lab, alice):
    """With setup codes on (the default), data does not approve a listed name's sign-up on its
    own: whoever signed up first would be her. The sysadmin approves it (or an admin, on
    NativeAuthenticator's /hub/authorize). Without them, stock NativeAuthenticator approves a
    listed name at sign-up (tests/test_hub_config.py)."""
    native = {"idle_timeout": 7200, "authenticator": "native", "login": {"first_login": "setup-code"}}
    assert converge_with(hub_lab, native) == ["JupyterHub | Stack files", "JupyterHub | Hub and registry up and answering"]
    try:
        carol = HubUser(hub_lab.url)
        assert "sent to the admin" in carol.signup("carol", "carol-native-pass-4"), "recorded"
        assert not carol.login("carol", "carol-native-pass-4"), "a sign-up of a listed name waits for approval"
        approved = hub_lab.host.exec("docker exec jupyterhub-hub-1 python3 /srv/jupyterhub/login_admin.py approve carol")
        assert "carol is approved" in approved.stdout
        assert carol.login("carol", "carol-native-pass-4"), "approved, she logs in with the password she signed up with"
        assert "already in use" in HubUser(hub_lab.url).signup("Carol", "carol-takeover-5"), "a case variant is carol"
        assert not HubUser(hub_lab.url).login("Carol", "carol-takeover-5"), "and cannot set her password"
        assert "sent to the admin" in HubUser(hub_lab.url).signup("mallory", "mallory-native-6")
        assert not HubUser(hub_lab.url).login("mallory", "mallory-native-6"), "an unlisted name never gets in"
        refused = hub_lab.host.exec("docker exec jupyterhub-hub-1 python3 /srv/jupyterhub/login_admin.py approve mallory", check=False)
        assert refused.returncode != 0 and "'mallory' is not a member of this lab" in refused.stderr
    finally:
        assert converge_with(hub_lab, {"idle_timeout": 7200}) == [
            "JupyterHub | Stack files", "JupyterHub | Hub and registry up and answering"]
    assert HubUser(hub_lab.url).login("alice", ALICE_PASSWORD), "back on first-use passwords, alice's is kept"


def test_a_changed_build_context_rebuilds_the_notebook_image(hub_lab, alice):
    """A running server keeps the image it started from until it restarts; new starts get the new one."""
    before = sorted(json.loads(hub_lab.host.exec("curl -s http://127.0.0.1:5000/v2/notebook/tags/list").stdout)["tags"])
    running = hub_lab.docker("inspect --format '{{.Config.Image}}' jupyter-alice")
    data = hub_data()
    images = [{**data["hub"]["images"][0], "build_args": {**data["hub"]["images"][0]["build_args"], "LAB_RELEASE": "2"}}]
    changed = converge_with(hub_lab, {"idle_timeout": 7200, "images": images})
    assert "JupyterHub | Notebook images in the registry" in changed
    after = sorted(json.loads(hub_lab.host.exec("curl -s http://127.0.0.1:5000/v2/notebook/tags/list").stdout)["tags"])
    assert len(after) == len(before) + 1, "a new tag for the new build context"
    new = NOTEBOOK_IMAGE_PREFIX + (set(after) - set(before)).pop()
    assert hub_lab.docker("inspect --format '{{.State.Status}} {{.Config.Image}}' jupyter-alice") == f"running {running}"
    carol = HubUser(hub_lab.url)
    assert carol.login("carol", CAROL_PASSWORD)
    carol.create_token("carol")
    carol.api("DELETE", "/hub/api/users/carol/server")  # from test_browser, if it ran
    deadline = time.monotonic() + 60
    while json.loads(carol.api("GET", "/hub/api/users/carol")[1]).get("servers", {}).get(""):
        assert time.monotonic() < deadline, "carol's server did not stop"
        time.sleep(1)
    carol.start_server("carol")
    assert hub_lab.docker("inspect --format '{{.Config.Image}}' jupyter-carol") == new, "a new start gets the new image"
    assert carol.api("DELETE", "/hub/api/users/carol/server")[0] in (202, 204)
    assert converge_with(hub_lab, {"idle_timeout": 7200, "images": images}) == []


def test_an_image_the_registry_has_but_the_engine_lost_is_pulled_again(hub_lab):
    offered = hub_lab.host.exec("cat /opt/jupyterhub/labhub.json").stdout
    image = next(ref for ref in notebook_images(hub_lab) if ref in offered)
    hub_lab.docker(f"rmi {image}")
    data = hub_data()
    images = [{**data["hub"]["images"][0], "build_args": {**data["hub"]["images"][0]["build_args"], "LAB_RELEASE": "2"}}]
    changed = converge_with(hub_lab, {"idle_timeout": 7200, "images": images})
    assert changed == ["JupyterHub | Notebook images in the registry", "JupyterHub | Old images pruned from the registry"], \
        "pulled, not rebuilt: the stack is unchanged"
    assert hub_lab.docker(f"image inspect --format '{{{{.Id}}}}' {image}").startswith("sha256:")


SCRATCH_VERSIONS = """
for n in 1 2 3 4 5; do
    printf 'FROM labhub-test/registry:2.8.3\\nRUN head -c 1M /dev/urandom > /version-%s\\n' $n | docker build -q -t localhost:5000/scratch:v$n - >/dev/null
    docker push -q localhost:5000/scratch:v$n >/dev/null
done
docker run -d --name scratch-in-use --entrypoint sleep localhost:5000/scratch:v1 infinity >/dev/null
"""


def registry_tags(hub_lab, repository: str) -> list[str]:
    return sorted(json.loads(hub_lab.host.exec(f"curl -s http://127.0.0.1:5000/v2/{repository}/tags/list").stdout).get("tags") or [])


def test_registry_retention_keeps_the_newest_tags_and_those_in_use(hub_lab, alice):
    """Five versions of an image (1 MiB of its own each), the oldest one in use by a container;
    the notebook image's allowed tag and the older one alice's server runs."""
    hub_lab.host.exec(SCRATCH_VERSIONS)
    alices_image = hub_lab.docker("inspect --format '{{.Config.Image}}' jupyter-alice").rsplit(":", 1)[1]
    allowed = json.loads(hub_lab.host.exec("cat /opt/jupyterhub/labhub.json").stdout)["images"]["notebook"].rsplit(":", 1)[1]
    data = hub_data()
    images = [{**data["hub"]["images"][0], "build_args": {**data["hub"]["images"][0]["build_args"], "LAB_RELEASE": "2"}}]
    try:
        changed = converge_with(hub_lab, {"idle_timeout": 7200, "images": images, "registry_keep": 2})
        assert "JupyterHub | Old images pruned from the registry" in changed
        assert registry_tags(hub_lab, "scratch") == ["v1", "v4", "v5"], "the 2 newest and the one in use"
        assert {alices_image, allowed} <= set(registry_tags(hub_lab, "notebook"))
        report = json.loads(hub_lab.host.exec("cat /var/lib/labhub/registry-prune.json").stdout)
        reclaimed = report["bytes_before"] - report["bytes_after"]
        print(f"registry retention: deleted {report['deleted']}, {reclaimed} bytes reclaimed, {report['bytes_after']} left")
        assert report["deleted"] == {"scratch": ["v2", "v3"]} and reclaimed > 1.5 * 1024 * 1024
        journal = hub_lab.host.exec("journalctl -u labhub-registry-prune --no-pager -o cat").stdout
        assert "scratch: deleted v2, v3; kept v1, v4, v5" in journal
        # Pulls work afterwards, pushes too: the registry is read-write again.
        hub_lab.host.exec("docker rmi localhost:5000/scratch:v4 >/dev/null && docker pull -q localhost:5000/scratch:v4")
        assert hub_lab.host.exec("docker rmi localhost:5000/scratch:v2 >/dev/null; docker pull -q localhost:5000/scratch:v2",
                                 check=False).returncode != 0, "a deleted tag is gone"
        hub_lab.host.exec("docker tag localhost:5000/scratch:v4 localhost:5000/scratch:v6 && docker push -q localhost:5000/scratch:v6")
        assert hub_lab.docker("inspect --format '{{.State.Status}}' jupyter-alice") == "running"
        assert converge_with(hub_lab, {"idle_timeout": 7200, "images": images, "registry_keep": 2}) == []
    finally:
        hub_lab.host.exec("docker rm -f scratch-in-use >/dev/null 2>&1; true")
    # The weekly run, once v1 is no longer in use: v6 (pushed by hand) names the same image as v4.
    hub_lab.host.exec("systemctl start labhub-registry-prune")
    assert registry_tags(hub_lab, "scratch") == ["v4", "v5", "v6"], "the 2 newest images, whatever their tags"


def test_after_a_reboot_the_hub_answers_without_a_deploy_and_servers_show_stopped(hub_lab, alice):
    assert hub_lab.docker("inspect --format '{{.State.Status}}' jupyter-alice") == "running"
    hub_lab.reboot()
    deadline = time.monotonic() + 180
    while alice.request("GET", "/hub/health")[0] != 200:
        assert time.monotonic() < deadline, "the hub did not come back after the reboot"
        time.sleep(2)
    assert alice.whoami() == "alice", "still logged in"
    deadline = time.monotonic() + 60
    while json.loads(alice.api("GET", "/hub/api/users/alice")[1]).get("servers"):  # the hub finds it gone
        assert time.monotonic() < deadline, "alice's server is still shown as running after the reboot"
        time.sleep(2)
    assert "jupyter-alice" not in hub_lab.docker("ps --format '{{.Names}}'").split()
    alice.server = alice.start_server("alice")
    assert alice.read("alice", "home/jupyter-alice/notes.txt") == (200, "in my home")
    assert HubUser(hub_lab.url).login("bob", "bob-first-login-8"), "passwords survived"
    assert cli.changed_operations(cli.converge(hub_lab.inventory)) == {}, "nothing for the deploy to do"


def test_the_host_checks_pass_on_the_hub_host(hub_lab, alice):
    checks = cli.host_checks(hub_lab.inventory)
    assert checks.returncode == 0, checks.explain()
    assert "PASSED labhub/checks/test_hub.py::test_users_servers_run_as_their_host_account_unprivileged[hubhost]" in checks.stdout


# The hub database's alembic revision set on the host (python3's sqlite3, beside the running hub).
SET_REVISION = """
import sqlite3, sys
database = sqlite3.connect(sys.argv[1])
print(database.execute("select version_num from alembic_version").fetchone()[0])
database.execute("update alembic_version set version_num = ?", (sys.argv[2],))
database.commit()
"""


def test_a_database_schema_older_than_the_hubs_jupyterhub_is_named_by_the_host_checks(hub_lab, alice):
    """The check reads the revision on the host and compares it with the head of the hub
    image's JupyterHub, read once per image ID and kept by the machine that runs the checks."""
    from labhub.checks.test_hub import SCHEMA_HEADS

    database = "\"$(docker volume inspect --format '{{.Mountpoint}}' jupyterhub_hub-data)/jupyterhub.sqlite\""
    image_id = hub_lab.host.exec("docker inspect --format '{{.Image}}' jupyterhub-hub-1").stdout.strip()
    version, expected = json.loads(SCHEMA_HEADS.read_text())[image_id]  # read by the checks of the test above
    head = hub_lab.host.exec(f"python3 -c {q(SET_REVISION)} {database} 0eee8c825d24").stdout.strip()  # JupyterHub 4's
    try:
        assert (version, head) == (JUPYTERHUB_VERSION, expected), "the database was at the image's head"
        checks = cli.host_checks(hub_lab.inventory, "-k", "schema")
        assert checks.returncode == 1, checks.explain()
        assert (f"hub database: expected the schema of JupyterHub {JUPYTERHUB_VERSION} (revision {expected}), "
                "found revision 0eee8c825d24 (an older one)") in checks.stdout, checks.explain()
    finally:
        hub_lab.host.exec(f"python3 -c {q(SET_REVISION)} {database} {head}")
    assert cli.host_checks(hub_lab.inventory, "-k", "schema").returncode == 0


def test_a_hub_that_does_not_come_up_fails_the_deploy_with_its_last_log_lines(hub_lab, alice):
    """Last: it breaks the hub's database, as a disk fault would (with the hub stopped: a
    running hub would write its write-ahead log back into the file as it stops)."""
    converge_with(hub_lab, {"idle_timeout": 7200, "ready_timeout": 40})
    hub_lab.docker("stop jupyterhub-hub-1")
    hub_lab.host.exec(f"cd {HUB_DATA} && echo not a database > jupyterhub.sqlite && rm -f jupyterhub.sqlite-wal jupyterhub.sqlite-shm")
    hub_lab.docker("start jupyterhub-hub-1")
    run, _ = cli.deploy(hub_lab.inventory)
    assert run.returncode != 0
    assert "[hubhost] hub did not answer 200 on http://127.0.0.1:8000/hub/health within 40 s; its last log lines:" in run.output, run.explain()
    assert "hub-1  |" in run.output and "Hub and registry up and answering" in run.output
    # The sysadmin removes the broken database; the next run converges.
    hub_lab.host.exec(f"rm -f {HUB_DATA}/jupyterhub.sqlite {HUB_DATA}/jupyterhub.sqlite-wal {HUB_DATA}/jupyterhub.sqlite-shm "
                      "&& docker restart jupyterhub-hub-1 >/dev/null")
    results = cli.converge(hub_lab.inventory)
    assert results["totals"]["error"] == 0
    # Passwords live beside the database (FirstUseAuthenticator's dbm): alice keeps hers.
    assert HubUser(hub_lab.url).login("alice", ALICE_PASSWORD)
    assert not HubUser(hub_lab.url).login("alice", "someone-elses-guess-1")
