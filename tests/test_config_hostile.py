"""Validation tried as a careless or hostile user would: every pattern matches the whole
value, nothing a shell, a unit file, compose.yaml or a credentials file could misread gets
through, and each error says what to write instead. No test host needed."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from labhub import config as model
from labhub.config import hub as hub_model
from labhub.inventory import ConfigError, validate_host_data, validate_inventory
from tasks.hub import CA_TRUST_STEP, HUB_CONTEXT, context_files

pytestmark = pytest.mark.quick

SHARE = {"name": "data", "server": "files.example.org", "share": "data", "mount_point": "/mnt/data"}


def problems(data: dict, inventory: str | None = None) -> str:
    with pytest.raises(ConfigError) as error:
        validate_host_data("lab1", data, inventory)
    return str(error.value)


@pytest.fixture
def share_password(monkeypatch):
    monkeypatch.setenv("LABHUB_SHARE_DATA_USERNAME", "labuser")
    monkeypatch.setenv("LABHUB_SHARE_DATA_PASSWORD", "Secret-Never-Shown-1")


@pytest.mark.parametrize(
    "data, where",
    [
        ({"users": ["alice\n"]}, "users[0].name"),
        ({"admins": ["ops\n"]}, "admins[0].name"),
        ({"users": [{"name": "alice", "group": "users\n"}]}, "users[0].group"),
        ({"hub": {"mem_limit": "4G\n"}}, "hub.mem_limit"),
        ({"hub": {"images": [{"name": "notebook\n"}]}}, "hub.images[0].name"),
        ({"hub": {"stack_dir": "/opt/jupyterhub\n"}}, "hub.stack_dir"),
        ({"drift": {"on_calendar": "daily\n"}}, "drift.on_calendar"),
        ({"docker": {"key_fingerprint": "9DC858229FC7DD38854AE2D88D81803C0EBFCD88\n"}}, "docker.key_fingerprint"),
    ],
)
def test_a_trailing_newline_is_refused_everywhere(data, where):
    assert f"{where} = " in problems(data)


@pytest.mark.parametrize(
    "change, where",
    [
        ({"file_mode": "0664\n"}, "shares[0].file_mode"),
        ({"options": ["port=4450\n"]}, "shares[0].options"),
        ({"uid": "root\n"}, "shares[0].uid"),
        ({"name": "data\n"}, "shares[0].name"),
    ],
)
def test_a_trailing_newline_is_refused_in_shares(share_password, change, where):
    assert f"{where}" in problems({"shares": [{**SHARE, **change}]})


@pytest.mark.parametrize("shell", ["/bin/bash -c id", "/bin/ba'sh", "/bin/$(id)", "/bin/`id`", "/bin/../bin/sh", "bash", "/bin/sh;id", "/bin/bash\n"])
def test_a_login_shell_is_a_plain_absolute_path(shell):
    message = problems({"users": [{"name": "alice", "shell": shell}]})
    assert "users[0].shell" in message and "plain absolute path" in message


def test_plain_shells_are_accepted():
    config = validate_host_data("lab1", {"users": [{"name": "alice", "shell": "/usr/bin/zsh"}, {"name": "bob", "shell": "/bin/sh"}]})
    assert [u.shell for u in config.users] == ["/usr/bin/zsh", "/bin/sh"]


def test_wrong_types_say_what_to_write_instead(share_password):
    assert "shares[0].file_mode = 664 (int): Input should be a valid string: write it as a string, '0664'" in problems(
        {"shares": [{**SHARE, "file_mode": 664}]})
    assert "users[0].uid = '2002' (str): Input should be a valid integer: write the number, 2002 (without quotes)" in problems(
        {"users": [{"name": "alice", "uid": "2002"}]})
    assert "shares[0].read_only = 'yes' (str): Input should be a valid boolean: write True or False" in problems(
        {"shares": [{**SHARE, "read_only": "yes"}]})
    assert "write a list, ['alice']" in problems({"users": "alice"})
    assert "hub.cpu_limit = '2' (str): Input should be a valid number" in problems({"hub": {"cpu_limit": "2"}})


def test_an_error_about_one_entry_names_it_without_dumping_the_list():
    users = ["alice", "bob", "carol", "dave", "erin", "alice"]
    message = problems({"users": users})
    assert "users[5]: duplicate name 'alice', also users[0]" in message
    assert "'bob'" not in message and "carol" not in message, "the whole list is not dumped"
    message = problems({"admins": ["ops", {"name": "lab", "uid": 1500}, {"name": "ops2", "uid": 1500}]})
    assert "admins[2]: duplicate UID 1500, also admins[1]" in message
    message = problems({"hub": {"images": [{"name": "notebook"}, {"name": "gpu"}, {"name": "notebook"}]}})
    assert "hub.images[2]: duplicate name 'notebook', also hub.images[0]" in message


def test_a_mistyped_connection_key_points_to_pyinfra_s_key():
    message = problems({"ssh_usr": "root"})
    assert "ssh_usr: unknown key; did you mean pyinfra's connection key 'ssh_user'?" in message
    assert "did you mean pyinfra's connection key 'ssh_port'?" in problems({"ssh_prot": 22})
    assert "did you mean 'users'?" in problems({"jupyter_user": ["alice"]}), "labhub's own keys still win where they are closer"


def test_a_secrets_file_others_can_read_is_exactly_one_error(tmp_path):
    secrets = tmp_path / "lab.secrets.toml"
    secrets.write_text('[shares.data]\nusername = "u"\npassword = "Secret-Never-Shown-2"\n')
    secrets.chmod(0o644)
    shares = [SHARE, {**SHARE, "name": "analysis", "share": "analysis", "mount_point": "/mnt/analysis"}]
    message = problems({"shares": shares}, str(tmp_path / "lab.py"))
    assert message.count("\n  - ") == 1 and "is readable by others (mode 0644); run: chmod 600" in message, message
    assert "no username and password" not in message and "Secret-Never-Shown-2" not in message
    hosts = [SimpleNamespace(name=f"lab{n}", data=SimpleNamespace(dict=lambda: {"shares": shares}, get=lambda key: shares)) for n in (1, 2, 3)]
    with pytest.raises(ConfigError) as error:
        validate_inventory(hosts, str(tmp_path / "lab.py"))
    assert str(error.value).count("readable by others") == 1, "one error for the whole run, not one per host"


@pytest.mark.parametrize(
    "data, where, expected",
    [
        ({"hub": {"public_url": "https://hub.example.org/$(id)"}}, "hub.public_url", "no spaces, quotes, '$'"),
        ({"hub": {"public_url": "javascript:alert(1)"}}, "hub.public_url", "http:// or https://"),
        ({"docker": {"key_url": "https://keys.example.org/`id`"}}, "docker.key_url", "http:// or https://"),
        ({"docker": {"repo_url": "https://mirror.example.org/docker'; id"}}, "docker.repo_url", "http:// or https://"),
        ({"docker": {"version": "5:27.0; rm -rf /"}}, "docker.version", "as apt writes versions"),
        ({"docker": {"source": "mirror", "repo_url": "http://m.lab", "repo_suite": "trixie\nTrusted: yes", "key_url": "http://m.lab/k",
                     "key_fingerprint": "AB" * 20}}, "docker.repo_suite", "as apt writes versions"),
        ({"docker": {"daemon_json": {"hosts": "tcp://0.0.0.0:2375"}}}, "docker.daemon_json", "must be a list"),
        ({"hub": {"base_image": "jupyterhub\n    privileged: true"}}, "hub.base_image", "Docker image reference"),
        ({"hub": {"registry_image": "registry:2 --privileged"}}, "hub.registry_image", "Docker image reference"),
        ({"hub": {"images": [{"name": "notebook", "build_args": {"A B": "x"}}]}}, "hub.images[0].build_args", "a name must be letters"),
        ({"hub": {"images": [{"name": "notebook", "build_args": {"BASE_IMAGE": "x\ny"}}]}}, "hub.images[0].build_args", "one line"),
        ({"hub": {"images": [{"name": "notebook", "display_name": "Python\n<b>"}]}}, "hub.images[0].display_name", "one line"),
        ({"hub": {"images": [{"name": "notebook", "context": "../hub"}]}}, "hub.images[0].context", "directory of files/images/"),
        ({"drift": {"inventory": "inventories/lab.py; id"}}, "drift.inventory", "not an inventory file"),
        ({"drift": {"report_dir": "/var/lib/labhub/../../etc"}}, "drift.report_dir", "normalised absolute path"),
        ({"drift": {"on_calendar": "daily; ExecStart=/bin/sh"}}, "drift.on_calendar", "systemd calendar expression"),
        ({"users": [{"name": "alice", "group": "admin"}]}, "users[0].group", "must not grant root"),
        ({"users": [{"name": "alice", "group": "lxd"}]}, "users[0].group", "must not grant root"),
    ],
)
def test_strings_that_reach_a_shell_a_unit_or_a_config_file_are_plain(data, where, expected):
    message = problems(data)
    assert f"{where}" in message and expected in message, message


@pytest.mark.parametrize("change, expected", [({"domain": "WORK\npassword=x"}, "shares[0].domain"), ({"share": "data\nx"}, "shares[0].share")])
def test_share_fields_cannot_add_lines_to_the_credentials_file_or_fstab(share_password, change, expected):
    assert expected in problems({"shares": [{**SHARE, **change}]})


def test_a_share_password_with_a_line_break_is_refused_and_not_shown(monkeypatch):
    monkeypatch.setenv("LABHUB_SHARE_DATA_USERNAME", "labuser")
    monkeypatch.setenv("LABHUB_SHARE_DATA_PASSWORD", "Secret-Line-1\nusername=root")
    message = problems({"shares": [SHARE]})
    assert "shares[0].credentials.password = <hidden>: a share password must not contain a line break" in message and "Secret-Line-1" not in message and "username=root" not in message
    monkeypatch.setenv("LABHUB_SHARE_DATA_USERNAME", "lab\nuser")
    monkeypatch.setenv("LABHUB_SHARE_DATA_PASSWORD", "fine")
    assert "shares[0].credentials.username = <hidden>" in problems({"shares": [SHARE]})


def test_one_definition_of_the_root_equivalent_groups():
    from labhub.checks import test_users
    from labhub.ops import accounts

    assert accounts.PRIVILEGED_GROUPS is model.PRIVILEGED_GROUPS is test_users.PRIVILEGED_GROUPS
    assert {"sudo", "admin", "wheel", "docker", "root"} <= set(model.PRIVILEGED_GROUPS)


def test_every_image_context_trusts_the_extra_cas_from_one_copy_of_the_step():
    step = CA_TRUST_STEP.read_text()
    contexts = [HUB_CONTEXT, *[d for d in hub_model.IMAGE_CONTEXTS.iterdir() if (d / "Dockerfile").is_file()]]
    for directory in contexts:
        dockerfile = context_files(directory, {"site.crt": b"pem"})["Dockerfile"].decode()
        assert model.CA_TRUST_MARKER not in dockerfile.splitlines() and dockerfile.count(step.rstrip("\n")) == 1, directory
        assert dockerfile.index("USER root") < dockerfile.index("COPY ca-certificates/"), "the step runs as root"
    assert "update-ca-certificates" not in "".join((d / "Dockerfile").read_text() for d in contexts), "no other copy of the step"


def test_an_image_context_without_the_trust_step_is_refused(tmp_path, monkeypatch):
    (tmp_path / "r-lang").mkdir()
    (tmp_path / "r-lang" / "Dockerfile").write_text("FROM rocker/r-ver:4.4\nUSER root\nRUN echo no CA step\n")
    monkeypatch.setattr(hub_model, "IMAGE_CONTEXTS", tmp_path)
    message = problems({"hub": {"images": [{"name": "r", "context": "r-lang"}]}})
    assert "hub.images[0].context" in message and f"has no line '{model.CA_TRUST_MARKER}'" in message
    assert "add it after 'FROM' and 'USER root'" in message


def test_a_list_of_known_names_in_an_error_is_cut_short(share_password):
    users = [f"student{n:03d}" for n in range(500)]
    message = problems({"users": users, "shares": [{**SHARE, "uid": "jupyter-alice"}]})
    assert "'jupyter-alice' is not an account this host has" in message and "and 493 more" in message
    assert len(message) < 500, "500 members are not listed"
