"""files/jupyterhub_config.py with the settings tasks/hub.py writes (labhub.json), loaded
without a hub: which authenticator, who may log in, how a user's server is started. The
end-to-end behaviour is in test_hub.py; this covers the choices it does not exercise
(NativeAuthenticator, idle culling off) in a second."""

from __future__ import annotations

import io
import json
import pwd
from types import SimpleNamespace

import pytest

from labhub.inventory import validate_host_data
from tasks.hub import HUB_CONFIG, hub_settings

pytestmark = pytest.mark.quick


class Section(dict):
    """A stand-in for traitlets' Config: c.Class.trait = value."""

    def __getattr__(self, name):
        return self.setdefault(name, Section())

    def __setattr__(self, name, value):
        self[name] = value


def load(data: dict, monkeypatch) -> Section:
    config = validate_host_data("lab1", {"users": ["alice", {"name": "bob", "admin": True}], **data})
    settings = json.dumps(hub_settings(config, {"notebook": "localhost:5000/notebook:abc123"}))
    c = Section()
    namespace = {"get_config": lambda: c, "open": lambda path: io.StringIO(settings), "__name__": "jupyterhub_config"}
    exec(compile(HUB_CONFIG.read_text(), str(HUB_CONFIG), "exec"), namespace)
    return c


def test_firstuse_admits_exactly_the_listed_users(monkeypatch):
    c = load({}, monkeypatch)
    assert c.JupyterHub.authenticator_class == "firstuseauthenticator.FirstUseAuthenticator"
    assert c.FirstUseAuthenticator.create_users is False
    assert c.Authenticator.allowed_users == {"alice", "bob"} and c.Authenticator.admin_users == {"bob"}
    assert c.FirstUseAuthenticator.dbm_path.startswith("/srv/jupyterhub/data/"), "passwords survive a hub restart"
    assert c.FirstUseAuthenticator.min_password_length == 8


def test_native_authenticator_keeps_open_signup_off(monkeypatch):
    c = load({"hub": {"authenticator": "native", "min_password_length": 12}}, monkeypatch)
    assert c.JupyterHub.authenticator_class == "nativeauthenticator.NativeAuthenticator"
    assert c.NativeAuthenticator.open_signup is False
    assert c.NativeAuthenticator.minimum_password_length == 12
    assert c.Authenticator.allowed_users == {"alice", "bob"}


def test_servers_survive_hub_restarts_and_only_allowed_images_run(monkeypatch):
    c = load({}, monkeypatch)
    assert c.JupyterHub.cleanup_servers is False
    assert c.DockerSpawner.allowed_images == {"notebook": "localhost:5000/notebook:abc123"}
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
    assert "services" not in c.JupyterHub
