"""On the converged test lab (three hosts, one per Docker source): the first run changed each
host, a second run changes nothing, and `pyinfra --dry` plans nothing."""

import re

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


def facts_loaded(output: str) -> dict[str, list[str]]:
    """Host -> the facts a `pyinfra -v` run read over SSH, one round trip each."""
    loaded: dict[str, list[str]] = {}
    for line in re.sub(r"\x1b\[[0-9;]*m", "", output).splitlines():
        line = line.strip()
        if "Loaded fact" in line and line.startswith("["):
            host, _, rest = line[1:].partition("]")
            loaded.setdefault(host, []).append(rest.split("Loaded fact", 1)[1].strip())
    return loaded


def test_a_no_op_run_reads_each_hosts_state_in_one_round_trip(lab):
    """labhub/ops/facts.py: what the last run read is read again in one command, and nothing
    is read twice while nothing changed (pyinfra itself reads each fact to plan and again to
    execute, one round trip each)."""
    run = cli.pyinfra(lab.inventory, "-y", "-v", "deploy.py")
    assert run.returncode == 0, run.explain()
    loaded = facts_loaded(run.output)
    assert loaded == {name: ["labhub.ops.facts.Together"] for name in lab.hosts}, loaded
