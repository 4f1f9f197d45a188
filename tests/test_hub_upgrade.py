"""An upgrade of JupyterHub on a running lab, as The Littlest JupyterHub tests its own
(--upgrade-from): a copy of the run's converged hub host is put back to a lab that has only
known the previous JupyterHub (4.1.6, its own database), a member logs in, starts a server
and makes a token; then the deploy with today's JupyterHub. Her server keeps running, her
session, token and password keep working, the database is backed up and its schema upgraded."""

from __future__ import annotations

import json
import shlex
import time

import pytest

from tasks.hub import HUB_DATABASE
from tests.harness import cli
from tests.harness.hosts import write_inventory
from tests.harness.hublab import SHARE_CREDENTIALS, hub_data
from tests.harness.hubclient import HubUser
from tests.harness.images import JUPYTERHUB_VERSION, PREVIOUS_JUPYTERHUB_VERSION, build
from tests.harness.lab import write_secrets

pytestmark = [pytest.mark.hub, pytest.mark.upgrade]


@pytest.fixture(scope="module")
def hub_lab(own_hub_lab):
    return own_hub_lab

PASSWORD = "alice-before-the-upgrade-3"
SCHEMA_OF_JUPYTERHUB_5 = "4621fec11365"  # alembic revision "manage roles", new in 5.0
# JupyterHub's own verdict, in the hub's container (the host checks read the revision on the
# host and compare it with the image's head): its version, the database's revision, whether
# orm.check_db_revision finds it current, and the journal mode. From a copy with its log.
SCHEMA_PROBE = f"""
import os, shutil, tempfile, jupyterhub, sqlalchemy
from jupyterhub import orm
with tempfile.TemporaryDirectory() as copy:
    for suffix in ("", "-wal"):
        if os.path.exists({HUB_DATABASE!r} + suffix):
            shutil.copyfile({HUB_DATABASE!r} + suffix, copy + "/hub.sqlite" + suffix)
    engine = sqlalchemy.create_engine("sqlite:///" + copy + "/hub.sqlite")
    with engine.connect() as connection:
        revision = connection.execute(sqlalchemy.text("select version_num from alembic_version")).scalar()
        journal = connection.execute(sqlalchemy.text("pragma journal_mode")).scalar()
    try:
        orm.check_db_revision(engine)
        state = "current"
    except orm.DatabaseSchemaMismatch:
        state = "stale"
    engine.dispose()
print(jupyterhub.__version__, revision, state, journal)
"""


def converge_with(hub_lab, data: dict) -> list[str]:
    write_inventory(hub_lab.inventory, [(hub_lab.host, data)])
    write_secrets(hub_lab.inventory, SHARE_CREDENTIALS)
    return cli.changed_operations(cli.converge(hub_lab.inventory)).get(hub_lab.host.name, [])


def hub_schema(hub_lab) -> tuple[str, str, str]:
    """(JupyterHub version, schema revision, current or stale) in the hub's container."""
    version, revision, state, _journal = hub_lab.docker(f"exec jupyterhub-hub-1 python3 -c {shlex.quote(SCHEMA_PROBE)}").split()
    return version, revision, state


def test_an_upgrade_keeps_running_servers_sessions_tokens_and_passwords(hub_lab):
    previous, archive = build("jupyterhub-previous")
    # A lab that has only known the previous JupyterHub: servers stopped, its database gone.
    hub_lab.host.exec("docker ps -q --filter name=^jupyter- | xargs -r docker stop >/dev/null; cd /opt/jupyterhub && "
                      "docker compose down --timeout 20 && docker volume rm jupyterhub_hub-data >/dev/null")
    old = hub_data()
    old["image_archives"].append(str(archive))
    old["hub"]["base_image"] = previous
    converge_with(hub_lab, old)
    version, revision, state = hub_schema(hub_lab)
    assert (version, state) == (PREVIOUS_JUPYTERHUB_VERSION, "current") and revision != SCHEMA_OF_JUPYTERHUB_5

    alice = HubUser(hub_lab.url)
    assert alice.login("alice", PASSWORD)
    token = alice.create_token("alice")
    alice.start_server("alice")
    assert alice.write("alice", "home/jupyter-alice/before-the-upgrade.txt", "written on 4.1.6")[0] == 201
    server_started = hub_lab.docker("inspect --format '{{.State.StartedAt}}' jupyter-alice")

    started = time.monotonic()
    changed = converge_with(hub_lab, hub_data())
    print(f"upgrade converge {PREVIOUS_JUPYTERHUB_VERSION} -> {JUPYTERHUB_VERSION}: {time.monotonic() - started:.0f} s")
    assert "JupyterHub | Hub and registry up and answering" in changed
    assert hub_schema(hub_lab) == (JUPYTERHUB_VERSION, SCHEMA_OF_JUPYTERHUB_5, "current"), "the schema was upgraded"
    log = hub_lab.docker("logs jupyterhub-hub-1 2>&1")
    assert "Upgrading sqlite:////srv/jupyterhub/data/jupyterhub.sqlite" in log
    backups = hub_lab.docker("exec jupyterhub-hub-1 sh -c 'ls /srv/jupyterhub/data'").split()
    assert any(name.startswith("jupyterhub.sqlite.") for name in backups), f"the database was copied first: {backups}"

    assert hub_lab.docker("inspect --format '{{.State.StartedAt}}' jupyter-alice") == server_started, "her server kept running"
    assert alice.whoami() == "alice", "she is still logged in"
    assert json.loads(alice.api("GET", "/hub/api/user")[1])["name"] == "alice", "her token works"
    assert alice.token == token
    deadline = time.monotonic() + 60
    while alice.read("alice", "home/jupyter-alice/before-the-upgrade.txt")[0] != 200:  # the proxy's routes come back
        assert time.monotonic() < deadline, "alice's server is not reachable after the upgrade"
        time.sleep(1)
    assert alice.read("alice", "home/jupyter-alice/before-the-upgrade.txt") == (200, "written on 4.1.6")
    assert HubUser(hub_lab.url).login("alice", PASSWORD), "her password works"
    assert not HubUser(hub_lab.url).login("alice", "another-password-9"), "and no other"

    assert cli.changed_operations(cli.converge(hub_lab.inventory)) == {}
    checks = cli.host_checks(hub_lab.inventory)
    assert checks.returncode == 0, checks.explain()
