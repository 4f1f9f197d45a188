"""Run the real pyinfra CLI (and the project's other commands) as a user would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from labhub.local import REPO

BIN = Path(sys.executable).parent  # the venv the tests run in holds pyinfra


@dataclass
class Run:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def explain(self) -> str:
        return f"$ {' '.join(self.args)}\nexit {self.returncode}\n--- stdout\n{self.stdout[-6000:]}\n--- stderr\n{self.stderr[-6000:]}"


def run_command(cmd: list[str], timeout: float, env: dict | None) -> Run:
    """Run a command from the repository root; `env` adds environment variables."""
    try:
        result = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})})
    except subprocess.TimeoutExpired as expired:  # say where it stood: pyinfra prints each operation as it goes
        def text(part) -> str:
            return part.decode(errors="replace") if isinstance(part, bytes) else (part or "")
        raise AssertionError(f"$ {' '.join(cmd)}\ntimed out after {timeout:.0f} s\n--- stdout\n{text(expired.stdout)[-3000:]}\n"
                             f"--- stderr\n{text(expired.stderr)[-6000:]}") from None
    return Run(cmd, result.returncode, result.stdout, result.stderr)


def pyinfra(inventory: Path | str, *args: str, timeout: float = 1800, env: dict | None = None) -> Run:
    """`pyinfra INVENTORY ARGS...` from the repository root, as the README says to run it;
    `env` adds environment variables (share credentials)."""
    cmd = [str(BIN / "pyinfra"), str(inventory), *args]
    return run_command(cmd, timeout, env)


def deploy(inventory: Path | str, *extra: str, env: dict | None = None, timeout: float = 1800) -> tuple[Run, dict]:
    """`pyinfra -y --json INVENTORY deploy.py`: the run and its per-operation results."""
    run = pyinfra(inventory, "-y", "--json", *extra, "deploy.py", env=env, timeout=timeout)
    try:
        results = json.loads(run.stdout)["results"] if run.stdout.strip() else {}
    except json.JSONDecodeError:
        results = {}
    return run, results or {}


def converge(inventory: Path | str, *extra: str, env: dict | None = None, timeout: float = 1800) -> dict:
    """Deploy and require success on every host; returns the per-operation results."""
    run, results = deploy(inventory, *extra, env=env, timeout=timeout)
    assert run.returncode == 0 and results.get("totals", {}).get("error") == 0, run.explain()
    return results


def changed_operations(results: dict) -> dict[str, list[str]]:
    """Host -> names of the operations that changed something on it."""
    changed: dict[str, list[str]] = {}
    for operation in results.get("operations", []):
        for host in operation["success"]:
            changed.setdefault(host, []).append(operation["name"])
    return changed


def dry_plan(inventory: Path | str, env: dict | None = None) -> dict[str, list[str]]:
    """Host -> names of the operations `pyinfra --dry` would run on it."""
    run = pyinfra(inventory, "--dry", "--json", "deploy.py", env=env)
    assert run.returncode == 0, run.explain()
    plan: dict[str, list[str]] = {}
    for operation in json.loads(run.stdout)["plan"]:
        for host in operation["hosts_with_change"]:
            plan.setdefault(host, []).append(operation["name"])
    return plan


def host_checks(inventory: Path | str, *extra: str, timeout: float = 900, env: dict | None = None) -> Run:
    """The sysadmin's verification, `pytest labhub/checks --inventory INVENTORY`."""
    cmd = [sys.executable, "-m", "pytest", "labhub/checks", "--inventory", str(inventory), "-q", "-rA", "-p", "no:cacheprovider", *extra]
    return run_command(cmd, timeout, env)


def drift_check(inventory: Path | str, *args: str, timeout: float = 600, env: dict | None = None) -> Run:
    """`./drift-check INVENTORY ARGS...`, as the README and the nightly unit run it."""
    cmd = [str(REPO / "drift-check"), str(inventory), *args]
    return run_command(cmd, timeout, env)
