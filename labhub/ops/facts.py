"""Facts, read as few times as a run allows: every operation reads its state through `get`.

pyinfra 3 reads a fact anew each time an operation asks (and, when it shows the plan first,
once more to plan), one SSH round trip each: on a converged host that was most of a no-op
run. Here, a fact once read is kept until an operation changes something (on any host: a
worker joining the swarm changes the hub's list of nodes), and what the last run on a host
read is read again at its start, all in one command (`read_ahead`, the deploy's first line);
at the end of the run the record of what it read is written anew. The record holds fact
names and arguments (paths, units, image names), never their output, in
~/.cache/labhub/facts/; without one (a machine's first run), facts are read as they are asked.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
from contextlib import contextmanager
from pathlib import Path

from pyinfra import host, state
from pyinfra.api import FactBase
from pyinfra.api.state import BaseStateCallback

RECORDS = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "labhub" / "facts"
STATUS = "@@labhub-fact-status@@ "  # ends each command's output in a Together read, with its exit status


class Together(FactBase):
    """Several facts' commands in one: each in a subshell of its own (an `exit` or a failure
    ends only that one), all at once, their outputs printed in order, each ended by a STATUS
    line with its exit status. Where no temporary directory can be made (a full disk), they
    run one after another instead."""

    def command(self, commands: tuple[str, ...]) -> str:
        # printf's leading newline ends a last line that has none; split() drops the empty
        # line it adds after one that had it, so each output reads exactly as it does alone.
        status = f"printf '\\n{STATUS}%s\\n'"
        # Each command's output file ends with its status line: one `cat` prints them all.
        started = "".join(f"( ( {command}\n); {status} \"$?\" ) > \"$d/{n}\" 2>/dev/null &\n" for n, command in enumerate(commands))
        outputs = " ".join(f"\"$d/{n}\"" for n in range(len(commands)))
        one_by_one = "\n".join(f"( ( {command}\n); {status} \"$?\" )" for command in commands)
        return (
            "if d=$(mktemp -d 2>/dev/null); then\n"
            f"{started}wait\n"
            f"cat {outputs}\n"
            "rm -rf \"$d\"\n"
            f"else\n{one_by_one}\nfi"
        )

    @staticmethod
    def default():
        return []

    def process(self, output):
        return split(output)


def split(lines: list[str]) -> list[tuple[int, list[str]]]:
    """(exit status, output lines) of each command of a Together read, in order."""
    results, current = [], []
    for line in lines:
        if line.startswith(STATUS):
            if current and current[-1] == "":
                current.pop()
            results.append((int(line[len(STATUS):] or 1), current))
            current = []
        else:
            current.append(line)
    return results


def command_of(fact: FactBase, arguments: dict) -> str:
    return fact.command(**arguments) if callable(fact.command) else fact.command


def lines_of(output: str) -> list[str]:
    """Output lines as pyinfra reads them: split at newlines only (str.splitlines also
    splits at form feeds and other separators a file may hold)."""
    lines = output.split("\n")
    return lines[:-1] if lines[-1] == "" else lines


def value_of(fact: FactBase, lines: list[str]):
    """What pyinfra makes of a fact's output: its default when there is none."""
    return fact.process(lines) if lines else fact.default()


# host name -> {"kept": {key: (changes when read, value)}, "read": [request, ...], "ahead": bool}
_runs: dict[str, dict] = {}


def _run() -> dict:
    return _runs.setdefault(host.name, {"kept": {}, "read": [], "ahead": False})


def _changes() -> int:
    """Operations that have run commands so far, on any host: a fact kept from before one
    of them may be out of date."""
    if not state.is_executing:
        return 0
    return sum(1 for ops in state.ops.values() for data in ops.values() if data.operation_meta.executed)


def _key(fact_class: type[FactBase], arguments: dict) -> str:
    return f"{fact_class.__module__}:{fact_class.__qualname__}:{json.dumps(arguments, sort_keys=True)}"


def get(fact_class: type[FactBase], output_hidden: bool = False, **arguments):
    """`host.get_fact(fact_class, **arguments)`, read once while nothing changed.
    `output_hidden`: its output stays out of `-vvv` (digests of files that hold secrets)."""
    run = _run()
    if not run["ahead"]:
        read_ahead()
    run["read"].append(fact_request(fact_class, arguments, output_hidden))
    key = _key(fact_class, arguments)
    changes = _changes()
    kept = run["kept"].get(key)
    if kept is not None and kept[0] == changes:
        return kept[1]
    with fact_output_hidden(output_hidden):
        value = host.get_fact(fact_class, **arguments)
    run["kept"][key] = (changes, value)
    return value


def record_of(name: str, data, what: str = "deploy") -> Path:
    """Where what was read on a host is written down: by its name and address, so that two
    labs' "hub" do not share one; `what`: the deploy's facts, or the host checks' reads."""
    where = f"{name} {data.get('ssh_hostname')} {data.get('ssh_port')} {data.get('ssh_user')} {what}"
    return RECORDS / f"{hashlib.sha256(where.encode()).hexdigest()[:16]}.json"


def load_record(record: Path) -> list[dict]:
    try:
        found = json.loads(record.read_text())
    except (OSError, ValueError):
        return []
    return found if isinstance(found, list) else []


def save_record(record: Path, requests: list[dict]) -> None:
    """The requests, each once, in the order first made."""
    seen, once = set(), []
    for request in requests:
        key = json.dumps(request, sort_keys=True)
        if key not in seen:
            seen.add(key)
            once.append(request)
    try:
        record.parent.mkdir(parents=True, exist_ok=True)
        staged = record.with_suffix(f".{os.getpid()}")
        staged.write_text(json.dumps(once, indent=1) + "\n")
        staged.replace(record)
    except OSError:
        pass  # a read-only home: the next run reads its facts one by one


def fact_request(fact_class: type[FactBase], arguments: dict, hidden: bool = False) -> dict:
    return {"fact": f"{fact_class.__module__}:{fact_class.__qualname__}", "arguments": arguments, "hidden": hidden}


def _tuples(value):
    """JSON gives lists where the facts' arguments were tuples."""
    return tuple(_tuples(item) for item in value) if isinstance(value, list) else value


def requested_fact(request: dict) -> tuple[type[FactBase], dict, str]:
    """The fact class, arguments and command of a recorded request (ValueError: not one
    this version of labhub can read, e.g. a class since renamed)."""
    try:
        module, _, name = request["fact"].partition(":")
        fact_class = getattr(importlib.import_module(module), name)
        arguments = {key: _tuples(value) for key, value in request["arguments"].items()}
        return fact_class, arguments, command_of(fact_class(), arguments)
    except Exception as error:  # noqa: BLE001 - whatever an old record holds
        raise ValueError(f"unreadable request {request!r}") from error


def read_ahead() -> None:
    """Read, in one command, every fact the last run on this host read."""
    run = _run()
    if run["ahead"]:
        return
    run["ahead"] = True
    if not getattr(state, "_labhub_remembers", False):
        state.add_callback_handler(_Remember())
        state._labhub_remembers = True
    facts, commands, hidden = [], [], False
    for request in load_record(record_of(host.name, host.data)):
        try:
            fact_class, arguments, command = requested_fact(request)
        except ValueError:
            continue  # read when asked
        facts.append((fact_class, arguments))
        commands.append(command)
        hidden = hidden or request.get("hidden", False)
    if not commands:
        return
    with fact_output_hidden(hidden):
        results = host.get_fact(Together, tuple(commands))  # positional: -v names the fact, not every command
    if len(results) != len(commands):
        return  # a status line lost (a disk that filled meanwhile): each fact is read when asked
    for (fact_class, arguments), (status, lines) in zip(facts, results):
        if status != 0:
            continue  # read again when asked, so that pyinfra reports its error as usual
        try:
            run["kept"][_key(fact_class, arguments)] = (0, value_of(fact_class(), lines))
        except Exception:  # noqa: BLE001 - read again when asked, with pyinfra's own error
            continue


class _Remember(BaseStateCallback):
    """At the end of the run (pyinfra disconnects from each host, also after a failure or
    Ctrl-C): what the run read on the host, for the next run's `read_ahead`. A host that
    failed keeps what its record held besides, as its run may have stopped early."""

    @staticmethod
    def host_disconnect(state, host):
        run = _runs.get(host.name)
        if not run or not run["read"]:
            return
        record = record_of(host.name, host.data)
        kept = load_record(record) if host in state.failed_hosts else []
        save_record(record, [*run["read"], *kept])


_hidden = 0


@contextmanager
def fact_output_hidden(hide: bool = True):
    """Keep a fact's output out of `-vvv` (digests of files that hold secrets)."""
    global _hidden
    if not hide:
        yield
        return
    if _hidden == 0:
        fact_output_hidden.saved = state.print_fact_output
        state.print_fact_output = False
    _hidden += 1
    try:
        yield
    finally:
        _hidden -= 1
        if _hidden == 0:
            state.print_fact_output = fact_output_hidden.saved
