"""The host checks' pytest plugin: `--inventory` names the lab (a pyinfra inventory) and
`--host` narrows it. Every check is parametrized by the inventory's hosts and reads each
host's expected state from the same validated config the deploy uses; failure messages say
expected vs found, and the drift check reports them per host."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from labhub.checks.target import Target, connect
from labhub.inventory import ConfigError, load_inventory, validate_host_data
from labhub.ops.facts import record_of


def pytest_addoption(parser):
    parser.addoption("--inventory", default=None, help="check the hosts of this pyinfra inventory, e.g. inventories/lab.py")
    parser.addoption("--host", action="append", default=None, help="check only this host of the inventory (repeatable)")
    parser.addoption("--names-to", default=None, help="write the names of the hosts checked into this file, one per line (the drift check reads them)")


def pytest_configure(config):
    if not config.getoption("--inventory"):
        raise pytest.UsageError("the host checks need the lab to check: pytest labhub/checks --inventory inventories/lab.py")


_inventories: dict[str, list[tuple[str, dict]]] = {}


def inventory_hosts(path: str) -> list[tuple[str, dict]]:
    """The inventory's hosts and data, loaded once per run (not once per check)."""
    if path not in _inventories:
        _inventories[path] = load_inventory(path)
    return _inventories[path]


def selected(config) -> list[tuple[str, dict]]:
    only = config.getoption("--host")
    return [(name, data) for name, data in inventory_hosts(config.getoption("--inventory")) if not only or name in only]


def pytest_collection_finish(session):
    names_to = session.config.getoption("--names-to")
    if names_to:
        Path(names_to).write_text("".join(f"{name}\n" for name, _ in selected(session.config)))


def pytest_generate_tests(metafunc):
    if "target" in metafunc.fixturenames:
        names = [name for name, _ in selected(metafunc.config)]
        metafunc.parametrize("target", names, indirect=True, scope="session")


@pytest.fixture(scope="session")
def targets(request) -> Iterator[dict[str, Target]]:
    inventory = request.config.getoption("--inventory")
    found = {}
    for name, data in selected(request.config):
        try:
            config = validate_host_data(name, data, inventory)
        except ConfigError as error:
            pytest.exit(str(error), returncode=4)
        found[name] = Target(name, connect(name, data), config, record_of(name, data, "checks"))
    with ThreadPoolExecutor(max_workers=16) as pool:
        for warmed in [pool.submit(target.warm_up) for target in found.values()]:
            try:
                warmed.result()
            except Exception:  # noqa: BLE001 - a host that cannot be read fails its own checks, with its own words
                pass
    yield found
    for target in found.values():
        target.remember()  # what the checks read, for the next run's warm-up


@pytest.fixture(scope="session")
def lab_configs(request) -> dict:
    """Every host of the inventory, validated, --host or not: a swarm's hub is checked
    against all the lab's nodes."""
    inventory = request.config.getoption("--inventory")
    return {name: validate_host_data(name, data, inventory) for name, data in inventory_hosts(inventory)}


@pytest.fixture(scope="session")
def target(request, targets) -> Target:
    return targets[request.param]
