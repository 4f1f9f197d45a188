"""The backup settings and the restore, validated before any host is contacted: where the
repository is, its password from the environment or the secrets file (never from data), and
what a restore may name. And what lands on the host: the unit holds no secret, the env file
quotes what it holds. No test host needed."""

from __future__ import annotations

import pytest

from labhub.config import LabHost
from labhub.inventory import ConfigError, validate_host_data
from labhub.templates import render
from tasks.backup import backup_unit_values, restic_env

pytestmark = pytest.mark.quick

BACKUP = {"enabled": True, "repository": "/mnt/backup/labhub"}
PASSWORD = "Quick-Restic-Canary-17"


@pytest.fixture
def password(monkeypatch):
    monkeypatch.setenv("LABHUB_BACKUP_PASSWORD", PASSWORD)


def problems(data: dict, inventory: str | None = None) -> str:
    with pytest.raises(ConfigError) as error:
        validate_host_data("lab1", data, inventory)
    return str(error.value)


def test_backups_are_off_by_default_and_need_nothing():
    config = validate_host_data("lab1", {})
    assert not config.backup.enabled and config.restore is None and config.backup.credentials is None


def test_a_backup_without_a_password_says_where_to_put_it(monkeypatch):
    monkeypatch.delenv("LABHUB_BACKUP_PASSWORD", raising=False)
    message = problems({"backup": BACKUP})
    assert "host 'lab1'" in message and "needs the repository password; set LABHUB_BACKUP_PASSWORD or [backup] password" in message


def test_a_backup_without_a_repository_is_refused(password):
    assert "backup.repository: backup.enabled needs a repository" in problems({"backup": {"enabled": True}})


def test_the_password_never_comes_from_data(password):
    message = problems({"backup": {**BACKUP, "credentials": {"password": "in-git-7"}}})
    assert "backup.credentials: the repository password never goes in host data" in message and "in-git-7" not in message


def test_the_password_comes_from_the_secrets_file(tmp_path, monkeypatch):
    monkeypatch.delenv("LABHUB_BACKUP_PASSWORD", raising=False)
    inventory = tmp_path / "lab.py"
    secrets = tmp_path / "lab.secrets.toml"
    secrets.write_text(f'[backup]\npassword = "{PASSWORD}"\n')
    secrets.chmod(0o600)
    config = validate_host_data("lab1", {"backup": BACKUP}, str(inventory))
    assert config.backup.credentials.password.get_secret_value() == PASSWORD
    secrets.chmod(0o644)
    message = problems({"backup": BACKUP}, str(inventory))
    assert "is readable by others" in message and PASSWORD not in message


@pytest.mark.parametrize(
    "repository",
    ["relative/path", "/mnt/backup/../etc", "/mnt/with space", "/mnt/$(id)", "sftp:host:/x", "s3:https://h/b/'x", "rest:http://x/", "/mnt/x\n"],
)
def test_repositories_restic_would_misread_are_refused(password, repository):
    message = problems({"backup": {**BACKUP, "repository": repository}})
    assert "backup.repository" in message and "must be a plain absolute path" in message


def test_an_s3_repository_needs_its_keys(password, monkeypatch):
    data = {"backup": {**BACKUP, "repository": "s3:https://s3.example.org/lab-backups/labhub"}}
    assert "an s3: repository needs LABHUB_BACKUP_AWS_ACCESS_KEY_ID" in problems(data)
    monkeypatch.setenv("LABHUB_BACKUP_AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
    monkeypatch.setenv("LABHUB_BACKUP_AWS_SECRET_ACCESS_KEY", "wJalr/Secret+Example")
    env = restic_env(validate_host_data("lab1", data))
    assert "AWS_SECRET_ACCESS_KEY='wJalr/Secret+Example'\n" in env and "RESTIC_PASSWORD_FILE='/etc/labhub/backup/password'" in env
    assert PASSWORD not in env, "the password has its own file"


def test_keys_with_quotes_are_refused_unshown(password, monkeypatch):
    monkeypatch.setenv("LABHUB_BACKUP_AWS_ACCESS_KEY_ID", "AKIA'EXAMPLE")
    monkeypatch.setenv("LABHUB_BACKUP_AWS_SECRET_ACCESS_KEY", "plain")
    message = problems({"backup": {**BACKUP, "repository": "s3:https://s3.example.org/b/l"}})
    assert "backup.credentials.aws_access_key_id" in message and "AKIA" not in message


@pytest.mark.parametrize("spec, stored", [("latest", "latest"), ("1a2b3c4d", "1a2b3c4d"), (12345678, "12345678")])
def test_a_restore_names_latest_or_a_snapshot(password, spec, stored):
    assert validate_host_data("lab1", {"backup": BACKUP, "restore": spec}).restore == stored


@pytest.mark.parametrize("spec", ["newest", "1a2b", "1A2B3C4D", "latest; rm -rf /", True])
def test_a_restore_of_anything_else_is_refused(password, spec):
    assert "restore" in problems({"backup": BACKUP, "restore": spec})


def test_a_restore_needs_the_repository_even_without_backups(password):
    assert "restore = 'latest' needs a repository" in problems({"restore": "latest"})
    config = validate_host_data("lab1", {"backup": {"repository": "/mnt/backup/labhub"}, "restore": "latest"})
    assert not config.backup.enabled and config.backup.credentials is not None


def test_a_policy_that_keeps_nothing_is_refused(password):
    message = problems({"backup": {**BACKUP, "keep_daily": 0, "keep_weekly": 0, "keep_monthly": 0}})
    assert "every snapshot would be forgotten" in message


def test_the_unit_holds_no_secret(password):
    config = LabHost.model_validate({"backup": {**BACKUP, "credentials": {"password": PASSWORD}}})
    unit = render("labhub-backup.service", **backup_unit_values(config, "jupyter.physics.example.org"))
    assert PASSWORD not in unit and "EnvironmentFile=/etc/labhub/backup/restic.env" in unit
    assert "Environment=LABHUB_HOST=jupyter.physics.example.org" in unit
