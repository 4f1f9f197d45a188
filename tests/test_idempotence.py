"""On the converged test lab (three hosts, one per Docker source): the first run changed each
host, a second run changes nothing, and `pyinfra --dry` plans nothing."""

import pytest

from tests.harness import cli

pytestmark = pytest.mark.host


def test_first_run_converged_every_host(lab):
    changed = cli.changed_operations(lab.first_run)
    assert sorted(changed) == sorted(lab.hosts)


def test_second_run_reports_zero_changed_operations(lab):
    results = cli.converge(lab.inventory)
    assert cli.changed_operations(results) == {}
    assert results["totals"]["no_change"] == results["totals"]["hosts"]


def test_dry_run_shows_an_empty_plan(lab):
    assert cli.dry_plan(lab.inventory) == {}
