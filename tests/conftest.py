"""Fixtures that provision real throwaway hosts, shared by the tests of a session.

The host checks themselves are product code (labhub/checks); the tests run them against
every test host with `cli.host_checks`, as a sysadmin runs them against real servers.
"""

from __future__ import annotations

import pytest


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


@pytest.fixture(scope="session")
def hub_lab(tmp_path_factory, testhost_image, ssh_key):
    """A test host running the whole stack, hub and registry included, converged once."""
    from tests.harness.hublab import converged_hub

    with converged_hub(tmp_path_factory.mktemp("hub"), testhost_image, ssh_key) as lab:
        yield lab
