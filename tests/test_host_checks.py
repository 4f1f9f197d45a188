"""The host checks (labhub/checks, product code) against the converged test lab, run as a
sysadmin runs them: `pytest labhub/checks --inventory INVENTORY`. Every check runs on every
host; the only skips allowed are the ones that do not apply (no hub, no shares, no backups, shares not
mounted in a container). The lab was given hand-made state before the deploy (a hub user in
sudo, an extra docker member, a departed member), so these would fail had the deploy not
put it right."""

from __future__ import annotations

import ast
import xml.etree.ElementTree as ElementTree

import pytest

from labhub.local import REPO
from tests.harness import cli

pytestmark = pytest.mark.host

CHECKS = REPO / "labhub" / "checks"
NOT_APPLICABLE = ("runs no hub", "has no shares in its data", "does not mount its shares", "makes no backups", "has no research groups in data",
                  "is no swarm worker")


def check_names() -> set[str]:
    """module::check of every host check, read from the source (not from what ran)."""
    names = set()
    for module in CHECKS.glob("test_*.py"):
        tree = ast.parse(module.read_text())
        names |= {f"{module.stem}::{node.name}" for node in tree.body if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")}
    return names


def test_every_host_check_runs_on_every_test_host_and_passes(lab, tmp_path):
    junit = tmp_path / "checks.xml"
    checks = cli.host_checks(lab.inventory, f"--junitxml={junit}")
    assert checks.returncode == 0, checks.explain()
    outcomes, skips = {}, {}
    for case in ElementTree.parse(junit).getroot().iter("testcase"):
        name = f"{case.get('classname').rsplit('.', 1)[-1]}::{case.get('name')}"
        if case.find("skipped") is not None:
            outcomes[name], skips[name] = "skipped", case.find("skipped").get("message")
        elif case.find("failure") is not None or case.find("error") is not None:
            outcomes[name] = "failed"
        else:
            outcomes[name] = "passed"
    expected = {f"{check}[{host}]" for check in check_names() for host in lab.hosts}
    assert set(outcomes) == expected, f"missing: {sorted(expected - set(outcomes))}, unknown: {sorted(set(outcomes) - expected)}"
    assert [name for name, outcome in outcomes.items() if outcome == "failed"] == []
    assert {name: why for name, why in skips.items() if not any(reason in why for reason in NOT_APPLICABLE)} == {}
    # lab-distro has shares (written, not mounted): every share check but the mount runs there.
    shares = {name: outcome for name, outcome in outcomes.items() if name.startswith("test_shares::") and name.endswith("[lab-distro]")}
    assert [name for name, outcome in shares.items() if outcome != "passed"] == ["test_shares::test_shares_are_mounted_as_data_says[lab-distro]"]
