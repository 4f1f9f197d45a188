"""The test suite: where its time goes, from the ledger the last full run wrote
(test-artifacts/suite-times.json, tests/conftest.py). Run `make test` first."""

from __future__ import annotations

import datetime
import json
import os
import platform
from pathlib import Path

from tests.harness import cli

LEDGER = cli.REPO / "test-artifacts" / "suite-times.json"


def suite(workdir: Path) -> str:
    if not LEDGER.exists():
        raise SystemExit(f"{LEDGER} is missing: run the suite first (make test)")
    ledger = json.loads(LEDGER.read_text())
    modules = ledger["modules"]
    total = {module: sum(phases[p] for p in ("setup", "call", "teardown")) for module, phases in modules.items()}
    rows = [
        f"| `{module}` | {modules[module]['tests']} | {modules[module]['setup']:.0f} | {modules[module]['call']:.0f} | "
        f"{modules[module]['teardown']:.0f} | {total[module]:.0f} |"
        for module in sorted(total, key=total.get, reverse=True) if total[module] >= 1
    ]
    slowest = [f"| {step['seconds']:.0f} | `{step['step']}` |" for step in ledger["slowest"][:10]]
    wall = ledger.get("wall_seconds") or 0
    lines = [
        "## Test suite (issue 21)",
        "",
        f"Measured {datetime.date.fromtimestamp(LEDGER.stat().st_mtime)} on {os.cpu_count()} cores, {platform.system()} "
        f"{platform.release()}: one full run, {ledger['workers']} worker(s), {wall / 60:.1f} min of pytest "
        f"({sum(total.values()) / 60:.1f} min of test time summed over the workers)"
        + (f"; the cores were busy {ledger['cpu_busy']:.0%} of the run." if ledger.get("cpu_busy") is not None else "."),
        "",
        "| module | tests | setup (s) | calls (s) | teardown (s) | total (s) |",
        "|---|---:|---:|---:|---:|---:|",
        *rows,
        "",
        "Setup is where a module's hosts are started and converged (and, for the first module that",
        "needs one, the test images built); a module's teardown removes its hosts.",
        "",
        "The ten slowest steps:",
        "",
        "| seconds | step |",
        "|---:|---|",
        *slowest,
        "",
    ]
    return "\n".join(lines)
