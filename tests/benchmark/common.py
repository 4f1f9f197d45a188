"""What every section uses: timing, the no-op and floor runs, the test lab's data, and the
table each section writes into its part of docs/benchmarks.md."""

from __future__ import annotations

import datetime
import os
import platform
import re
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from tests.harness import cli

DOCS = cli.REPO / "docs" / "benchmarks.md"
ROUNDS = 7


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def lab_data(users: int, groups: int = 0) -> dict:
    names = [f"user{n:04d}" for n in range(users)]
    return {
        "hub": {"enabled": False},
        "docker": {"source": "distro"},
        "admins": ["labadmin"],
        "users": names,
        # research groups of users/groups members each, with their setgid folders
        "groups": [{"name": f"group{g:02d}", "members": names[g::groups]} for g in range(groups)],
    }


def noop(inventory: Path) -> None:
    results = cli.converge(inventory)
    changed = cli.changed_operations(results)
    assert not changed, f"a no-op run changed something: {changed}"


def floor(inventory: Path) -> None:
    run = cli.pyinfra(inventory, "-y", "exec", "--", "true")
    assert run.returncode == 0, run.explain()


def median_table(samples: dict[str, list[float]]) -> dict[str, float]:
    return {name: statistics.median(values) for name, values in samples.items()}


def table(title: str, rows: list[tuple[str, float, float, str]], summary: str,
          method: str = f"median of {ROUNDS} interleaved rounds (fresh converges: one run each)") -> str:
    lines = [
        f"## {title}",
        "",
        f"Measured {datetime.date.today()} on {os.cpu_count()} cores, {platform.system()} {platform.release()}, "
        f"{method}, one Debian 13 test host per case over SSH.",
        "",
        "| measurement | median (s) | best (s) | |",
        "|---|---:|---:|---|",
        *[f"| {name} | {median:.2f} | {best:.2f} | {note} |" for name, median, best, note in rows],
        "",
        summary,
        "",
    ]
    return "\n".join(lines)


def record(section: str, text: str) -> None:
    """Replace this section of docs/benchmarks.md (between its markers), keep the others."""
    begin, end = f"<!-- {section}: begin -->", f"<!-- {section}: end -->"
    current = DOCS.read_text() if DOCS.exists() else "# Benchmarks\n\nWritten by `python -m tests.benchmark SECTION`; do not edit by hand.\n\n"
    block = f"{begin}\n{text}{end}\n"
    if begin in current:
        current = re.sub(re.escape(begin) + r".*?" + re.escape(end) + r"\n", lambda _: block, current, flags=re.S)
    else:
        current += "\n" + block
    DOCS.write_text(current)


def noop_limited(inventory: Path, host: str) -> None:
    results = cli.converge(inventory, "--limit", host)
    assert not cli.changed_operations(results), "a no-op run changed something"
