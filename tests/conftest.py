"""Fixtures that provision real throwaway hosts, and the options of the host checks.

`pytest tests/host --inventory inventories/lab.py` checks real servers; without
`--inventory`, the host checks run against the test lab the harness provisions.
"""

from __future__ import annotations

import pytest


def pytest_addoption(parser):
    parser.addoption(
        "--inventory",
        default=None,
        help="check the hosts of this pyinfra inventory (a real lab) instead of provisioning test hosts",
    )
    parser.addoption("--host", action="append", default=None, help="with --inventory: check only this host (repeatable)")


@pytest.fixture(scope="session")
def testhost_image() -> str:
    from tests.harness.engine import testhost_image

    return testhost_image()


@pytest.fixture(scope="session")
def ssh_key(tmp_path_factory):
    from tests.harness.hosts import make_ssh_key

    return make_ssh_key(tmp_path_factory.mktemp("ssh"))


@pytest.fixture(scope="session")
def docker_repo(testhost_image):
    from tests.harness.aptrepo import fake_docker_repo

    return fake_docker_repo(testhost_image)


@pytest.fixture(scope="session")
def lab(tmp_path_factory, testhost_image, ssh_key, docker_repo):
    """Three test hosts (Docker from distro, official layout, mirror), converged once."""
    from tests.harness.lab import converged_lab

    with converged_lab(tmp_path_factory.mktemp("lab"), testhost_image, ssh_key, docker_repo) as lab:
        yield lab


def pytest_collection_modifyitems(config, items):
    # The host checks provision the test lab unless --inventory names real servers.
    for item in items:
        if "tests/host/" in item.nodeid and not config.getoption("--inventory"):
            item.add_marker(pytest.mark.host)


@pytest.fixture(scope="session")
def hub_lab(tmp_path_factory, testhost_image, ssh_key):
    """A test host running the whole stack, hub and registry included, converged once."""
    from tests.harness.hublab import converged_hub

    with converged_hub(tmp_path_factory.mktemp("hub"), testhost_image, ssh_key) as lab:
        yield lab
