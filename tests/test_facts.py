"""Several facts read in one command (labhub/ops/facts.py): each fact's output comes back
line for line as pyinfra reads it when the fact runs alone, whatever its last line, and an
`exit` or a failure in one ends only that one."""

import os
import subprocess
import time

import pytest

from labhub.ops.facts import Together

pytestmark = pytest.mark.quick

OUTPUTS = {
    "printf 'a\\nb\\n'": ["a", "b"],
    "printf 'a\\nb'": ["a", "b"],  # no newline at the end
    "printf 'a\\n\\n'": ["a", ""],  # an empty last line is kept
    "printf '\\n'": [""],
    "true": [],
    "printf ' indented \\t\\n'": [" indented \t"],
}


def lines_as_pyinfra_reads_them(command: str, env: dict | None = None) -> list[str]:
    out = subprocess.run(["sh", "-c", command], capture_output=True, text=True, env=env).stdout
    return out.split("\n")[:-1] if out.endswith("\n") else out.split("\n") if out else []


def read_together(commands: list[str], env: dict | None = None) -> list[tuple[int, list[str]]]:
    combined = Together().command(tuple(commands))
    return Together().process(lines_as_pyinfra_reads_them(combined, env))


def test_each_output_reads_as_it_does_alone():
    commands = list(OUTPUTS)
    for command, expected in OUTPUTS.items():
        assert lines_as_pyinfra_reads_them(command) == expected, command
    assert read_together(commands) == [(0, expected) for expected in OUTPUTS.values()]


def test_an_exit_or_a_failure_ends_only_its_own_command():
    results = read_together(["echo one; exit 0; echo never", "echo two; false", "cd /nonexistent 2>/dev/null || exit 3", "echo four"])
    assert results == [(0, ["one"]), (1, ["two"]), (3, []), (0, ["four"])]


def test_without_a_temporary_directory_they_run_one_after_another_with_the_same_answers():
    """A full disk: mktemp fails, and the commands run in turn instead of all at once."""
    env = {"PATH": os.environ["PATH"], "TMPDIR": "/nonexistent/labhub"}
    assert read_together(list(OUTPUTS), env) == [(0, expected) for expected in OUTPUTS.values()]
    assert read_together(["echo one; exit 0", "false"], env) == [(0, ["one"]), (1, [])]


def test_they_run_at_once():
    started = time.monotonic()
    assert read_together(["sleep 1; echo a", "sleep 1; echo b", "sleep 1; echo c"]) == [(0, ["a"]), (0, ["b"]), (0, ["c"])]
    assert time.monotonic() - started < 2.5
