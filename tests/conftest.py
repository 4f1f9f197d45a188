"""Fixtures that provision real throwaway hosts, shared by the tests of a session.

The host checks themselves are product code (labhub/checks); the tests run them against
every test host with `cli.host_checks`, as a sysadmin runs them against real servers.
"""

from __future__ import annotations

import pytest

# The suite runs on three workers (pytest-xdist: the Makefile's WORKERS). A unit of work is a
# module (its cases run in order on one worker), or all the tests that share one of the
# session's hosts (SHARED_HOSTS: collection refuses a test that uses one outside its unit).
# Units are handed out longest first, as measured (docs/benchmarks.md, "Test suite"), so that
# no worker is left alone at the end; the VM goes early, beside the hub, because it
# needs none of the hub's images, which the hub's unit builds meanwhile.
SHARED_HOSTS = {
    "hub_lab": ("tests/test_browser.py", "tests/test_docker_api.py", "tests/test_drift.py::test_drift_of_the_hub_stack", "tests/test_groups.py", "tests/test_hub.py"),
    "lab": ("tests/test_drift.py", "tests/test_host_checks.py", "tests/test_idempotence.py"),
    "vm_lab": ("tests/test_vm_shares.py", "tests/test_vm_quotas.py"),
}
LONGEST_FIRST = ("hub_lab", "vm_lab", "tests/test_swarm.py", "tests/test_backup.py", "tests/test_tls.py", "tests/test_lab_page.py",
                 "tests/test_interruptions.py", "lab", "tests/test_alerts.py", "tests/test_logins.py", "tests/test_hub_upgrade.py", "tests/test_ldap.py", "tests/test_faults.py",
                 "tests/test_host_changes.py", "tests/test_secrets.py")


def work_unit(nodeid: str) -> str:
    for unit, members in SHARED_HOSTS.items():
        if nodeid.startswith(members):
            return unit
    return nodeid.split("::", 1)[0]


def pytest_collection_modifyitems(config, items):
    for item in items:
        for name in SHARED_HOSTS:
            definitions = item._fixtureinfo.name2fixturedefs.get(name) or ()
            if definitions and definitions[-1].scope == "session" and work_unit(item.nodeid) != name:  # not a module's own of that name
                raise pytest.UsageError(f"{item.nodeid} uses the session's {name}: add it to SHARED_HOSTS[{name!r}] in tests/conftest.py")
    rank = {unit: index for index, unit in enumerate(LONGEST_FIRST)}

    def order(item) -> tuple[int, int]:
        # A shared host's modules run in the order SHARED_HOSTS lists them (the VM's shares
        # before its quotas, which move its homes); the cases of a module keep their order.
        unit = work_unit(item.nodeid)
        members = SHARED_HOSTS.get(unit, ())
        return rank.get(unit, len(rank)), next((i for i, member in enumerate(members) if item.nodeid.startswith(member)), 0)

    items.sort(key=order)


def pytest_runtest_teardown(item):
    """A test that imports pyinfra's CLI in-process (labhub.inventory.load_inventory does)
    brings in its gevent patches, and a pytest-xdist worker then stops waiting for work."""
    if hasattr(item.config, "workerinput"):
        from gevent import monkey

        if monkey.is_module_patched("threading"):
            pytest.exit(f"{item.nodeid} imported pyinfra's CLI in a pytest-xdist worker (gevent's patches): run that in a process of its own", returncode=3)


@pytest.hookimpl(optionalhook=True)  # pytest-xdist's
def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadScopeScheduling

    class ByWorkUnit(LoadScopeScheduling):
        """pytest-xdist's scheduling by scope, with work_unit as the scope."""

        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

    config.option.loadscopereorder = False  # the units come in LONGEST_FIRST order, from collection
    return ByWorkUnit(config, log)


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
def vm_lab(tmp_path_factory):
    """The VM (a real kernel: CIFS, quotas) with its Samba server, converged once, shared in order."""
    from tests.harness.vmlab import converged_vm_lab

    with converged_vm_lab(tmp_path_factory.mktemp("vm")) as lab:
        yield lab


@pytest.fixture(scope="session")
def hub_snapshot(tmp_path_factory, testhost_image, ssh_key):
    """The hub host converged from bare once per run, kept as a snapshot (tests/harness/snapshots.py)."""
    from tests.harness.hublab import hub_snapshot

    return hub_snapshot(tmp_path_factory.mktemp("hub-snapshot"), testhost_image, ssh_key)


@pytest.fixture(scope="session")
def hub_lab(tmp_path_factory, hub_snapshot, ssh_key):
    """A test host running the whole stack, hub and registry included, shared by the modules
    that use it (in order, on one worker): a copy of the run's converged hub host."""
    from tests.harness.hublab import converged_hub

    with converged_hub(tmp_path_factory.mktemp("hub"), hub_snapshot, ssh_key) as lab:
        yield lab


@pytest.fixture(scope="module")
def own_hub_lab(tmp_path_factory, hub_snapshot, ssh_key):
    """A module's own copy of the converged hub host: the module is then a unit of work of
    its own, which may run beside the shared hub_lab's."""
    from tests.harness.hublab import converged_hub

    with converged_hub(tmp_path_factory.mktemp("hub"), hub_snapshot, ssh_key) as lab:
        yield lab


# Where the suite's time goes: each module's setup (its fixtures: hosts started and
# converged), calls and teardown, summed from the test reports (in the controlling process
# under pytest-xdist, which forwards every worker's reports), written at the end of the run
# to test-artifacts/suite-times.json; `python -m tests.benchmark suite` turns it into the
# table in docs/benchmarks.md.
_ledger: dict[str, dict[str, float]] = {}
_steps: list[tuple[float, str]] = []


def pytest_runtest_logreport(report):
    module = report.nodeid.split("::", 1)[0]
    phases = _ledger.setdefault(module, {"setup": 0.0, "call": 0.0, "teardown": 0.0, "tests": 0})
    phases[report.when] += report.duration
    phases["tests"] += report.when == "call"
    _steps.append((report.duration, f"{report.when} {report.nodeid}"))


def pytest_sessionstart(session):
    if not hasattr(session.config, "workerinput"):  # not in a pytest-xdist worker: once per run
        from tests.harness.snapshots import remove_those_of_dead_runs

        remove_those_of_dead_runs()


def pytest_sessionfinish(session):
    import json
    import time
    from pathlib import Path

    if hasattr(session.config, "workerinput"):
        return  # a pytest-xdist worker: the controller cleans up and writes the ledger
    from tests.harness import snapshots

    snapshots.remove()  # this run's
    if not _ledger:
        return
    out = Path(session.config.rootpath) / "test-artifacts" / "suite-times.json"
    out.parent.mkdir(exist_ok=True)
    started = getattr(session.config, "_labhub_started", None)
    busy = getattr(session.config, "_labhub_cpu", None)
    out.write_text(json.dumps({
        "wall_seconds": time.time() - started if started else None,
        # How busy the machine's cores were over the run: what more workers could still use.
        "cpu_busy": round(cpu_busy(busy), 3) if busy else None,
        "workers": getattr(session.config.option, "numprocesses", None) or 1,
        "modules": _ledger,
        "slowest": [{"seconds": round(seconds, 1), "step": step} for seconds, step in sorted(_steps, reverse=True)[:25]],
    }, indent=1) + "\n")


def cpu_busy(before: tuple[int, int]) -> float:
    from tests.harness.cpu import cpu_ticks

    busy, total = cpu_ticks()
    return (busy - before[0]) / max(total - before[1], 1)


def pytest_configure(config):
    import time

    import tests.harness.snapshots  # noqa: F401 - names this run (LABHUB_TEST_RUN) before pytest-xdist starts its workers

    from tests.harness.cpu import cpu_ticks

    config._labhub_started = time.time()
    config._labhub_cpu = cpu_ticks()
