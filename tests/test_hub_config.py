"""files/jupyterhub_config.py with the settings tasks/hub.py writes (labhub.json), loaded
without a hub: which authenticator, who may log in, how a user's server is started. The
end-to-end behaviour is in test_hub.py; this covers the choices it does not exercise
(NativeAuthenticator, idle culling off) in a second."""

from __future__ import annotations

import grp
import io
import json
import pwd
import sys
from types import ModuleType, SimpleNamespace

import pytest

from labhub.inventory import validate_host_data
from labhub.hub_settings import hub_settings
from tasks.hub import HUB_CONFIG

pytestmark = pytest.mark.quick


class Section(dict):
    """A stand-in for traitlets' Config: c.Class.trait = value."""

    def __getattr__(self, name):
        return self.setdefault(name, Section())

    def __setattr__(self, name, value):
        self[name] = value


class StandInHub:
    """jupyterhub.app.JupyterHub, as far as the config file patches it."""

    async def init_groups(self):
        pass


listeners: dict[str, object] = {}  # SQLAlchemy's engine events the config file listens for


def listens_for(target, name):
    def register(function):
        listeners[name] = function
        return function

    return register


def load(data: dict, monkeypatch, refs: dict | None = None) -> Section:
    config = validate_host_data("lab1", {"users": ["alice", {"name": "bob", "admin": True}], **data})
    settings = json.dumps(hub_settings(config, refs or {"notebook": "localhost:5000/notebook:abc123"}))
    app = ModuleType("jupyterhub.app")
    app.JupyterHub = type("JupyterHub", (StandInHub,), {})
    monkeypatch.setitem(sys.modules, "jupyterhub.app", app)
    listeners.clear()
    monkeypatch.setitem(sys.modules, "sqlalchemy", SimpleNamespace(event=SimpleNamespace(listens_for=listens_for)))
    monkeypatch.setitem(sys.modules, "sqlalchemy.engine", SimpleNamespace(Engine=object))
    # The authenticators and login_guard.py (in the hub's image, beside the config): what the
    # config file does with them, recorded (login_guard.py itself is proven on a hub: test_logins.py).
    guard = ModuleType("login_guard")
    guard.guarded = lambda cls, limit, window: ("guarded", cls, limit, window)
    guard.first_use_off_the_event_loop = lambda cls, codes: ("off the event loop", cls, type(codes).__name__)
    guard.sign_ups_wait_for_approval = lambda cls: ("approved by a person", cls)
    guard.SetupCodes = type("SetupCodes", (), {})
    monkeypatch.setitem(sys.modules, "login_guard", guard)
    monkeypatch.setitem(sys.modules, "firstuseauthenticator", SimpleNamespace(FirstUseAuthenticator="FirstUseAuthenticator"))
    monkeypatch.setitem(sys.modules, "nativeauthenticator", SimpleNamespace(NativeAuthenticator="NativeAuthenticator"))
    c = Section()
    namespace = {"get_config": lambda: c, "open": lambda path: io.StringIO(settings), "__name__": "jupyterhub_config"}
    exec(compile(HUB_CONFIG.read_text(), str(HUB_CONFIG), "exec"), namespace)
    return c


def test_firstuse_admits_exactly_the_listed_users(monkeypatch):
    c = load({}, monkeypatch)
    assert c.JupyterHub.authenticator_class == ("guarded", ("off the event loop", "FirstUseAuthenticator", "SetupCodes"), 5, 300)
    assert c.Authenticator.request_otp is True and "Setup code" in c.Authenticator.otp_prompt, "the login form asks for it"
    assert c.FirstUseAuthenticator.create_users is False
    assert c.Authenticator.allowed_users == {"alice", "bob"} and c.Authenticator.admin_users == {"bob"}
    assert c.FirstUseAuthenticator.dbm_path.startswith("/srv/jupyterhub/data/"), "passwords survive a hub restart"
    assert c.FirstUseAuthenticator.min_password_length == 8
    assert c.JupyterHub.template_vars == {"announcement_home": '<a href="/hub/auth/change-password">Change your password</a>'}


def test_the_login_page_says_whose_lab_this_is_with_the_labs_text_escaped(monkeypatch):
    login = {"lab_name": "Optics & Lasers", "text": "Ask <Ann> first.", "contact_email": "hub@optics.example.org", "failed_limit": 3}
    c = load({"hub": {"login": login}}, monkeypatch)
    assert c.JupyterHub.template_vars["announcement_login"] == (
        '<strong>Optics &amp; Lasers</strong> Ask &lt;Ann&gt; first. Questions about your account: '
        '<a href="mailto:hub@optics.example.org">hub@optics.example.org</a>')
    assert c.JupyterHub.authenticator_class[2:] == (3, 300)


def test_the_hubs_sqlite_database_gets_a_write_ahead_log(monkeypatch, tmp_path):
    """A commit then waits for no disk sync (a class start's burst of spawns, docs/benchmarks.md)."""
    import sqlite3

    load({}, monkeypatch)
    connection = sqlite3.connect(tmp_path / "jupyterhub.sqlite")
    listeners["connect"](connection, None)
    assert connection.execute("pragma journal_mode").fetchone() == ("wal",)
    assert connection.execute("pragma synchronous").fetchone() == (1,)  # NORMAL


def test_an_open_first_login_needs_no_setup_code(monkeypatch):
    c = load({"hub": {"login": {"first_login": "open"}}}, monkeypatch)
    assert c.JupyterHub.authenticator_class[1] == ("off the event loop", "FirstUseAuthenticator", "NoneType")
    assert "request_otp" not in c.Authenticator
    c = load({"hub": {"authenticator": "native", "login": {"first_login": "open"}}}, monkeypatch)
    assert c.JupyterHub.authenticator_class == ("guarded", "NativeAuthenticator", 5, 300), "data approves listed names at sign-up"


def test_native_authenticator_keeps_open_signup_off(monkeypatch):
    c = load({"hub": {"authenticator": "native", "min_password_length": 12}}, monkeypatch)
    assert c.JupyterHub.authenticator_class == ("guarded", ("approved by a person", "NativeAuthenticator"), 5, 300)
    assert c.NativeAuthenticator.open_signup is False
    assert c.NativeAuthenticator.minimum_password_length == 12
    assert c.Authenticator.allowed_users == {"alice", "bob"}


def test_servers_survive_hub_restarts_and_only_allowed_images_run(monkeypatch):
    c = load({}, monkeypatch)
    assert c.JupyterHub.cleanup_servers is False
    anyone = SimpleNamespace(user=SimpleNamespace(name="alice"))
    assert c.DockerSpawner.allowed_images(anyone) == {"notebook": "localhost:5000/notebook:abc123"}
    assert c.DockerSpawner.extra_host_config == {"privileged": False, "cap_drop": ["ALL"], "security_opt": ["no-new-privileges:true"],
                                                 "cpu_shares": 128, "pids_limit": 1024}
    assert (c.DockerSpawner.mem_limit, c.DockerSpawner.cpu_limit, c.Spawner.start_timeout) == ("4G", 2.0, 600)


def test_a_server_runs_as_the_host_account_with_its_home_and_the_shares(monkeypatch):
    monkeypatch.setenv("LABHUB_SHARE_DATA_USERNAME", "u")
    monkeypatch.setenv("LABHUB_SHARE_DATA_PASSWORD", "p")
    share = {"name": "data", "server": "fs1", "share": "data", "mount_point": "/mnt/data", "read_only": True}
    c = load({"shares": [share]}, monkeypatch)
    account = SimpleNamespace(pw_name="jupyter-alice", pw_uid=2001, pw_gid=100, pw_dir="/home/jupyter-alice")
    monkeypatch.setattr(pwd, "getpwnam", lambda name: account if name == "jupyter-alice" else None)
    spawner = SimpleNamespace(user=SimpleNamespace(name="alice"), environment={"JUPYTERHUB_API_URL": "x"})
    spawner.user_options = {}
    c.Spawner.pre_spawn_hook(spawner)
    assert spawner.extra_create_kwargs == {"user": "2001:100"}
    assert spawner.volumes == {"/home/jupyter-alice": {"bind": "/home/jupyter-alice", "mode": "rw"},
                               "/mnt/data": {"bind": "/mnt/data", "mode": "ro"}}
    assert spawner.environment == {"JUPYTERHUB_API_URL": "x", "HOME": "/home/jupyter-alice", "USER": "jupyter-alice"}
    assert spawner.default_url == "/lab/tree/home/jupyter-alice"


def test_idle_culling_is_a_hub_service_unless_switched_off(monkeypatch):
    c = load({"hub": {"idle_timeout": 1800}}, monkeypatch)
    assert c.JupyterHub.services[0]["command"][-2:] == ["jupyterhub_idle_culler", "--timeout=1800"]
    assert "delete:servers" in c.JupyterHub.load_roles[0]["scopes"]
    c = load({"hub": {"idle_timeout": 0}}, monkeypatch)
    assert c.JupyterHub.services == [] and c.JupyterHub.load_roles == []


def test_the_lab_page_is_a_service_members_may_open_on_with_backups_or_quotas(monkeypatch):
    monkeypatch.setenv("LABHUB_LAB_TOKEN", "token-from-lab-env")
    monkeypatch.setenv("LABHUB_BACKUP_PASSWORD", "a-backup-password-1")
    backups = {"backup": {"enabled": True, "repository": "/srv/backup/labhub"}}
    for data, on in (({}, False), (backups, True), ({"hub": {"home_quota": "20G"}}, True),
                     ({**backups, "hub": {"lab_page": False}}, False), ({"hub": {"lab_page": True}}, True)):
        c = load(data, monkeypatch)
        lab = [s for s in c.JupyterHub.services if s["name"] == "lab"]
        assert bool(lab) == on, data
        if on:
            assert lab[0]["url"] == "http://lab:8090" and lab[0]["api_token"] == "token-from-lab-env"
            roles = {role["name"]: role for role in c.JupyterHub.load_roles}
            assert "access:services!service=lab" in roles["user"]["scopes"] and "self" in roles["user"]["scopes"]
            assert roles["lab-page"]["services"] == ["lab"] and not any(s.startswith(("admin", "delete", "servers")) for s in roles["lab-page"]["scopes"])


def test_the_lab_pages_helper_is_told_only_the_group_folders_members_may_restore():
    from labhub.config import LabHost
    from tasks.lab_page import helper_settings

    shares = [{"name": "lab", "server": "files.example.org", "share": "lab", "mount_point": "/mnt/lab"}]
    groups = [{"name": "optics", "members_restore": True}, {"name": "ethics"},
              {"name": "theory", "folder": "/mnt/lab/theory", "members_restore": True}]  # on a share: the file server's backup
    data = {"users": ["alice"], "shares": shares, "groups": groups, "hub": {"public_url": "https://hub.lab.example.org/"}}
    backups = {"backup": {"enabled": True, "repository": "/srv/backup/labhub", "credentials": {"password": "a-backup-password-1"}}}
    settings = json.loads(helper_settings(LabHost.model_validate({**data, **backups}), "lab1"))
    assert settings["groups"] == [{"name": "optics", "host_group": "lab-optics", "folder": "/srv/groups/optics"}]
    assert settings["tls"] == {"name": "hub.lab.example.org", "address": "127.0.0.1"} and settings["host"] == "lab1"
    assert json.loads(helper_settings(LabHost.model_validate(data), "lab1"))["groups"] == [], "no backups: nothing to restore"


GROUPS = {
    "users": ["alice", {"name": "bob", "admin": True}, "carol"],
    "groups": [
        {"name": "optics", "members": ["alice", "carol"], "mem_limit": "8G",
         "images": [{"name": "optics", "display_name": "Optics (CUDA)", "gpus": 1}]},
        {"name": "theory", "members": ["carol"], "folder": "/data/theory", "cpu_limit": 4.0, "gpus": "all"},
    ],
    "nvidia_gpus": True,
}
REFS = {"notebook": "localhost:5000/notebook:abc123", "optics": "localhost:5000/optics:def456"}


def spawn_settings(c, monkeypatch, name: str, image: str | None = None):
    uid = {"alice": 2001, "bob": 2002, "carol": 2003}[name]
    account = SimpleNamespace(pw_name=f"jupyter-{name}", pw_uid=uid, pw_gid=100, pw_dir=f"/home/jupyter-{name}")
    monkeypatch.setattr(pwd, "getpwnam", lambda _: account)
    monkeypatch.setattr(grp, "getgrnam", lambda group: SimpleNamespace(gr_gid={"lab-optics": 3001, "lab-theory": 3002}[group]))
    spawner = SimpleNamespace(user=SimpleNamespace(name=name), environment={}, user_options={"image": image} if image else {})
    c.Spawner.pre_spawn_hook(spawner)
    return spawner


def test_a_group_member_gets_its_folder_group_images_and_limits(monkeypatch):
    c = load(GROUPS, monkeypatch, REFS)
    alice = spawn_settings(c, monkeypatch, "alice")
    assert alice.volumes["/srv/groups/optics"] == {"bind": "/srv/groups/optics", "mode": "rw"}
    assert alice.extra_host_config["group_add"] == ["3001"], "the container's user is in lab-optics"
    assert (alice.mem_limit, alice.cpu_limit) == ("8G", 2.0), "optics: more memory; the hub's CPU limit"
    assert "device_requests" not in alice.extra_host_config, "the default image asks for no GPU"
    assert c.DockerSpawner.allowed_images(alice) == {"notebook": REFS["notebook"], "Optics (CUDA)": REFS["optics"]}
    with_gpu = spawn_settings(c, monkeypatch, "alice", image="Optics (CUDA)")
    assert with_gpu.extra_host_config["device_requests"] == [{"driver": "nvidia", "count": 1, "capabilities": [["gpu"]]}]


def test_a_member_of_several_groups_gets_every_folder_and_the_largest_limits(monkeypatch):
    carol = spawn_settings(load(GROUPS, monkeypatch, REFS), monkeypatch, "carol")
    assert set(carol.volumes) == {"/home/jupyter-carol", "/srv/groups/optics", "/data/theory"}
    assert sorted(carol.extra_host_config["group_add"]) == ["3001", "3002"]
    assert (carol.mem_limit, carol.cpu_limit) == ("8G", 4.0)
    assert carol.extra_host_config["device_requests"][0]["count"] == -1, "gpus: all"


def test_someone_outside_the_groups_gets_no_folder_group_image_or_gpu(monkeypatch):
    c = load(GROUPS, monkeypatch, REFS)
    bob = spawn_settings(c, monkeypatch, "bob")
    assert set(bob.volumes) == {"/home/jupyter-bob"}
    assert "group_add" not in bob.extra_host_config and "device_requests" not in bob.extra_host_config
    assert (bob.mem_limit, bob.cpu_limit) == ("4G", 2.0)
    assert c.DockerSpawner.allowed_images(bob) == {"notebook": REFS["notebook"]}, "DockerSpawner refuses any other image"
    assert c.JupyterHub.load_groups == {
        "optics": {"users": ["alice", "carol"], "properties": {"managed_by": "labhub"}},
        "theory": {"users": ["carol"], "properties": {"managed_by": "labhub"}},
    }


def test_a_group_folder_on_a_share_is_covered_in_other_members_servers(monkeypatch):
    monkeypatch.setenv("LABHUB_SHARE_ANALYSIS_USERNAME", "u")
    monkeypatch.setenv("LABHUB_SHARE_ANALYSIS_PASSWORD", "p")
    share = {"name": "analysis", "server": "fs1", "share": "analysis", "mount_point": "/mnt/analysis"}
    data = {"shares": [share], "groups": [{"name": "survey", "members": ["alice"], "folder": "/mnt/analysis/groups/survey"}]}
    c = load(data, monkeypatch)
    alice, bob = spawn_settings(c, monkeypatch, "alice"), spawn_settings(c, monkeypatch, "bob")
    assert set(alice.volumes) == {"/home/jupyter-alice", "/mnt/analysis"} and set(bob.volumes) == {"/home/jupyter-bob", "/mnt/analysis"}
    assert "/mnt/analysis/groups/survey" not in alice.volumes, "it comes with the share"
    assert "group_add" not in alice.extra_host_config
    tmp = f"rw,nosuid,nodev,size={2 * 1024**3},mode=1777"  # half the default 4G
    assert alice.extra_host_config["tmpfs"] == {"/tmp": tmp}
    assert bob.extra_host_config["tmpfs"] == {"/tmp": tmp, "/mnt/analysis/groups/survey": "ro,size=4k,mode=0700"}, "bob sees it empty"


def test_a_members_tmp_is_a_tmpfs_within_her_memory_limit(monkeypatch):
    c = load({"hub": {"mem_limit": "1G", "tmp_size": "256M"}, "groups": [{"name": "optics", "members": ["bob"], "mem_limit": "8G"}]}, monkeypatch)
    alice, bob = spawn_settings(c, monkeypatch, "alice"), spawn_settings(c, monkeypatch, "bob")
    assert alice.extra_host_config["tmpfs"] == {"/tmp": f"rw,nosuid,nodev,size={256 * 1024**2},mode=1777"}
    assert bob.extra_host_config["tmpfs"] == {"/tmp": f"rw,nosuid,nodev,size={256 * 1024**2},mode=1777"}
    c = load({"hub": {"mem_limit": "1G", "tmp_size": "2G"}}, monkeypatch)
    assert spawn_settings(c, monkeypatch, "alice").extra_host_config["tmpfs"]["/tmp"] == f"rw,nosuid,nodev,size={1024**3},mode=1777", "at most her memory"
