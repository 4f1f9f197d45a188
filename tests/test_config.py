"""Bad input stops the run before any host is contacted, with an error naming the host, the
field, the bad value and what is allowed. No test host needed: the inventories point at a
loopback port nothing listens on, so a connection attempt would show in the output."""

import os

import pytest

from labhub.config import LabHost
from labhub.inventory import ConfigError, validate_host_data
from tests.harness import cli

pytestmark = pytest.mark.quick

UNREACHABLE = {"ssh_hostname": "127.0.0.1", "ssh_port": 9, "ssh_user": "root"}


def problems(data: dict) -> str:
    with pytest.raises(ConfigError) as error:
        validate_host_data("lab1", {**UNREACHABLE, **data})
    return str(error.value)


@pytest.mark.parametrize(
    "name, expected",
    [
        ("Alice", "lower-case letters"),
        ("al ice", "lower-case letters"),
        ("1alice", "starting with a letter"),
        ("-alice", "starting with a letter"),
        ("a" * 25, "at most 24 characters"),
        ("root", "reserved"),
        ("docker", "reserved"),
        ("daemon", "reserved"),
        ("nobody", "reserved"),
        ("www-data", "reserved"),
        ("sshd", "reserved"),
    ],
)
def test_hub_user_names_useradd_cannot_take_are_refused(name, expected):
    message = problems({"users": [name]})
    assert "host 'lab1'" in message and "users[0].name" in message and repr(name) in message
    assert expected in message


def test_longest_name_that_fits_the_prefix_is_accepted():
    config = validate_host_data("lab1", {"users": ["a" * 24]})
    assert len(config.users[0].account) == 32


def test_duplicate_names_are_refused_also_after_lower_casing():
    assert "duplicate name 'alice'" in problems({"users": ["alice", "bob", "alice"]})
    # 'Alice' is refused for its upper case, and as a duplicate of 'alice' once that is fixed.
    message = problems({"users": ["alice", "Alice"]})
    assert "users[1].name = 'Alice'" in message
    from labhub.config import _check_unique

    with pytest.raises(ValueError, match="duplicate name 'Alice'.*lower-cased"):
        _check_unique("users", ["alice", "Alice"], [None, None])


def test_duplicate_and_system_uids_are_refused():
    assert "users[1]: duplicate UID 2001, also users[0]" in problems(
        {"users": [{"name": "alice", "uid": 2001}, {"name": "bob", "uid": 2001}]}
    )
    message = problems({"users": [{"name": "alice", "uid": 999}]})
    assert "users[0].uid = 999" in message and "between 1000 and 60000" in message
    assert "used by admin 'ops' and user 'alice'" in problems(
        {"admins": [{"name": "ops", "uid": 1500}], "users": [{"name": "alice", "uid": 1500}]}
    )


def test_unknown_keys_are_refused_with_a_suggestion():
    message = problems({"jupyter_user": ["alice"]})
    assert "jupyter_user: unknown key; did you mean 'users'?" in message
    assert "allowed: admins, alerts, apt, backup, docker, drift, extra_ca_certificates, groups, hub, image_archives, mount_shares, nvidia_gpus, restore, restore_files, restore_force, shares, swarm, users" in message
    message = problems({"docker": {"sorce": "distro"}})
    assert "docker.sorce: unknown key; did you mean 'source'?" in message
    message = problems({"users": [{"name": "alice", "gid": 100}]})
    assert "users[0].gid: unknown key; did you mean 'uid'?" in message


def test_wrong_types_are_refused():
    message = problems({"users": [{"name": "alice", "uid": "2001"}]})
    assert "users[0].uid = '2001' (str): Input should be a valid integer" in message
    message = problems({"users": "alice"})
    assert "users = 'alice' (str): Input should be a valid list" in message
    message = problems({"users": [{"name": "alice", "admin": "yes"}]})
    assert "users[0].admin = 'yes' (str): Input should be a valid boolean" in message


def test_admin_names_are_checked():
    assert "must not start with 'jupyter-'" in problems({"admins": ["jupyter-bob"]})
    assert "admins[0].name = 'root'" in problems({"admins": ["root"]})
    assert "duplicate name 'ops'" in problems({"admins": ["ops", "ops"]})


def test_hub_users_cannot_be_given_a_root_equivalent_group():
    assert "must not grant root, Docker or the system's secrets" in problems({"users": [{"name": "alice", "group": "docker"}]})


@pytest.mark.parametrize(
    "docker, expected",
    [
        ({"source": "snap"}, "docker.source = 'snap' (str): Input should be 'official', 'distro' or 'mirror'"),
        ({"source": "mirror", "repo_url": "http://mirror.lab/docker"}, "source 'mirror' needs repo_suite, key_url, key_fingerprint"),
        ({"source": "distro", "version": "5:27.0"}, "version only apply to source 'official' or 'mirror'"),
        ({"key_fingerprint": "ABCD"}, "40 hexadecimal digits"),
        ({"repo_url": "ftp://mirror"}, "http:// or https:// URL"),
        ({"daemon_json": {"hosts": ["unix:///run/docker.sock", "tcp://0.0.0.0:2375"]}}, "TCP Docker port"),
    ],
)
def test_docker_settings_are_checked(docker, expected):
    assert expected in problems({"docker": docker})


@pytest.mark.parametrize(
    "login, expected",
    [
        ({"contact_email": "admins at lab"}, "hub.login.contact_email = 'admins at lab' (str): 'admins at lab' is not an e-mail address"),
        ({"text": "two\nlines"}, "hub.login.text"),
        ({"failed_limit": 0}, "hub.login.failed_limit = 0 (int): must be at least 1"),
        ({"first_login": "first-come"}, "hub.login.first_login"),
        ({"setup_code_days": 0}, "hub.login.setup_code_days = 0 (int): must be at least 1"),
    ],
)
def test_login_settings_are_checked(login, expected):
    assert expected in problems({"hub": {"login": login}})


def test_setup_codes_need_jupyterhub_5():
    old = "quay.io/jupyterhub/jupyterhub:4.1.6"
    assert "hub.login.first_login 'setup-code' needs JupyterHub 5 or later" in problems({"hub": {"base_image": old}})
    validate_host_data("lab1", {**UNREACHABLE, "hub": {"base_image": old, "login": {"first_login": "open"}}})


def test_defaults_are_complete_and_documented():
    config = validate_host_data("lab1", {})
    assert config.docker.source == "official"
    assert config.docker.daemon_config() == {
        "log-driver": "json-file",
        "log-opts": {"max-size": "10m", "max-file": "3"},
        "live-restore": True,
        "icc": False,
        "no-new-privileges": True,
        "userland-proxy": False,
    }
    undocumented = [name for name, field in LabHost.model_fields.items() if not field.description]
    assert not undocumented


def test_daemon_json_data_is_merged_over_the_defaults():
    config = validate_host_data("lab1", {"docker": {"daemon_json": {"live-restore": None, "data-root": "/srv/docker"}}})
    assert config.docker.daemon_config() == {
        "log-driver": "json-file",
        "log-opts": {"max-size": "10m", "max-file": "3"},
        "icc": False,
        "no-new-privileges": True,
        "userland-proxy": False,
        "data-root": "/srv/docker",
    }


def test_the_cli_stops_before_connecting_and_names_every_bad_host(tmp_path):
    inventory = tmp_path / "bad.py"
    inventory.write_text(
        f"hosts = [('lab1', {{**{UNREACHABLE!r}, 'users': ['Alice']}}),"
        f" ('lab2', {{**{UNREACHABLE!r}, 'jupyter_user': ['bob']}}),"
        f" ('lab3', {UNREACHABLE!r})]\n"
    )
    run = cli.pyinfra(inventory, "-y", "deploy.py")
    assert run.returncode != 0, run.explain()
    assert "host 'lab1': invalid data" in run.output and "users[0].name = 'Alice'" in run.output
    assert "host 'lab2': invalid data" in run.output and "did you mean 'users'?" in run.output
    assert "host 'lab3'" not in run.output
    assert "no host was contacted" in run.output
    assert "Connecting to hosts" not in run.output and "Connected" not in run.output, run.explain()


LOAD_EXAMPLE_LAB = """
import json
from labhub.inventory import load_inventory, validate_host_data
configs = [validate_host_data(name, data, "inventories/lab.py") for name, data in load_inventory("inventories/lab.py")]
print(json.dumps([[[share.name for share in config.shares], len(config.users)] for config in configs]))
"""


def test_example_lab_inventory_is_valid():
    """In a process of its own: loading an inventory imports pyinfra's CLI, whose gevent
    patches would stop a pytest-xdist worker."""
    import json
    import subprocess
    import sys

    from labhub.local import REPO

    # The shares' credentials, as a lab provides them: never in the data.
    env = {f"LABHUB_SHARE_{share}_{field}": value for share in ("DATA", "ANALYSIS") for field, value in (("USERNAME", "labuser"), ("PASSWORD", "example"))}
    loaded = subprocess.run([sys.executable, "-c", LOAD_EXAMPLE_LAB], cwd=REPO, capture_output=True, text=True, env={**os.environ, **env})
    assert loaded.returncode == 0, loaded.stderr
    hosts = json.loads(loaded.stdout)
    assert hosts and all(shares == ["data", "analysis"] and users for shares, users in hosts), hosts


def test_configuration_reference_is_current():
    from pathlib import Path

    from labhub.reference import reference

    documented = (Path(__file__).parent.parent / "docs" / "configuration.md").read_text()
    assert documented == reference(), "run: python -m labhub.reference > docs/configuration.md"


SHARE = {"name": "analysis", "server": "files.example.org", "share": "analysis", "mount_point": "/mnt/analysis"}
PASSWORD = "Zx9-secret-never-printed"


@pytest.fixture
def share_secrets(monkeypatch):
    monkeypatch.setenv("LABHUB_SHARE_ANALYSIS_USERNAME", "labuser")
    monkeypatch.setenv("LABHUB_SHARE_ANALYSIS_PASSWORD", PASSWORD)


def test_every_share_needs_credentials_from_env_or_the_secrets_file(tmp_path):
    message = problems({"shares": [SHARE]})
    assert "shares[0] 'analysis': no username and password" in message
    assert "LABHUB_SHARE_ANALYSIS_USERNAME and LABHUB_SHARE_ANALYSIS_PASSWORD" in message


def test_credentials_come_from_the_secrets_file_next_to_the_inventory(tmp_path, monkeypatch):
    inventory = tmp_path / "lab.py"
    secrets = tmp_path / "lab.secrets.toml"
    secrets.write_text(f'[shares.analysis]\nusername = "labuser"\npassword = "{PASSWORD}"\n')
    secrets.chmod(0o600)
    config = validate_host_data("lab1", {"shares": [SHARE]}, str(inventory))
    assert config.shares[0].credentials.password.get_secret_value() == PASSWORD
    monkeypatch.setenv("LABHUB_SHARE_ANALYSIS_PASSWORD", "from-the-environment")
    config = validate_host_data("lab1", {"shares": [SHARE]}, str(inventory))
    assert config.shares[0].credentials.password.get_secret_value() == "from-the-environment", "the environment wins"
    assert PASSWORD not in repr(config) and PASSWORD not in str(config)


def test_a_secrets_file_others_can_read_is_refused_without_showing_it(tmp_path):
    secrets = tmp_path / "lab.secrets.toml"
    secrets.write_text(f'[shares.analysis]\nusername = "labuser"\npassword = "{PASSWORD}"\n')
    secrets.chmod(0o644)
    with pytest.raises(ConfigError) as error:
        validate_host_data("lab1", {"shares": [SHARE]}, str(tmp_path / "lab.py"))
    assert "is readable by others (mode 0644); run: chmod 600" in str(error.value)
    assert PASSWORD not in str(error.value)


def test_credentials_in_host_data_are_refused_and_not_echoed(share_secrets):
    message = problems({"shares": [{**SHARE, "credentials": {"username": "u", "password": "in-git-oops"}}]})
    assert "share credentials never go in host data" in message and "in-git-oops" not in message
    message = problems({"shares": [{**SHARE, "password": "in-git-oops"}]})
    assert "shares[0].password: unknown key" in message and "in-git-oops" not in message
    message = problems({"shares": [{**SHARE, "options": ["port=4450", "password=in-git-oops"]}]})
    assert "'password' is set from the share's own fields" in message and "in-git-oops" not in message


@pytest.mark.parametrize(
    "change, expected",
    [
        ({"mount_point": "mnt/analysis"}, "normalised absolute path"),
        ({"mount_point": "/mnt/analysis/"}, "normalised absolute path"),
        ({"mount_point": "/home"}, "would hide the system"),
        ({"server": "//files.example.org/analysis"}, "host name or an IP address"),
        ({"share": "/analysis"}, "name after //server/"),
        ({"file_mode": 664}, "Input should be a valid string"),
        ({"file_mode": "0999"}, "octal mode"),
        ({"smb_version": "1.0"}, "SMB1 '1.0' is insecure"),
        ({"uid": "mallory"}, "'mallory' is not an account this host has"),
        ({"gid": "physics"}, "'physics' is not a group this host has"),
        ({"options": ["x-systemd.automount"]}, "user containers need the real mount"),
        ({"options": ["uid=0"]}, "'uid' is set from the share's own fields"),
        ({"name": "Analysis"}, "share name must be"),
    ],
)
def test_share_fields_are_checked(share_secrets, change, expected):
    assert expected in problems({"users": ["alice"], "shares": [{**SHARE, **change}]})


def test_share_names_and_mount_points_are_unique_and_not_nested(share_secrets, monkeypatch):
    monkeypatch.setenv("LABHUB_SHARE_DATA_USERNAME", "u")
    monkeypatch.setenv("LABHUB_SHARE_DATA_PASSWORD", "p")
    assert "duplicate name 'analysis'" in problems({"shares": [SHARE, SHARE]})
    nested = {**SHARE, "name": "data", "mount_point": "/mnt/analysis/raw"}
    assert "shares[1]: mount point /mnt/analysis/raw is inside shares[0]'s /mnt/analysis" in problems({"shares": [SHARE, nested]})


def test_share_owner_may_be_a_hub_account_or_a_number(share_secrets):
    config = validate_host_data("lab1", {"users": ["alice"], "shares": [{**SHARE, "uid": "jupyter-alice", "gid": 100}]})
    assert (config.shares[0].uid, config.shares[0].gid, config.shares[0].file_mode) == ("jupyter-alice", 100, "0664")
