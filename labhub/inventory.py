"""Host data -> validated `LabHost`, checked for every host before pyinfra connects to any.

pyinfra offers no hook between loading the inventory and connecting, so `config.py` (which
pyinfra loads first) calls `validate_before_connect()`, which runs the checks right after
pyinfra has merged inventory and group data (`State.init`) and stops the run on bad input.
"""

from __future__ import annotations

import difflib
import re
from typing import Any

from pydantic import ValidationError

from labhub.config import EntryError, LabHost
from labhub.config.swarm import swarm_problems
from labhub.directory import DirectoryError, with_group_members
from labhub.secrets import Secrets, SecretsError, with_secrets

# Data keys that belong to pyinfra itself (connection settings, global operation arguments).
_pyinfra_keys: frozenset[str] | None = None

# Validated config per host name, filled before connecting and read by every task.
_validated: dict[str, LabHost] = {}


class ConfigError(Exception):
    """Bad host data; the message names host, field, bad value and what is allowed."""


def pyinfra_data_keys() -> frozenset[str]:
    global _pyinfra_keys
    if _pyinfra_keys is None:
        from pyinfra.api.arguments import all_global_arguments
        from pyinfra.api.connectors import get_all_connectors

        keys = {name for name, _ in all_global_arguments()}
        for connector in get_all_connectors().values():
            keys |= set(getattr(connector, "data_meta", None) or {})
        _pyinfra_keys = frozenset(keys)
    return _pyinfra_keys


# Fields whose values are never echoed in an error message (mount options may carry a secret;
# an alert target's URL and the heartbeats' hold tokens).
SECRET_FIELD_NAMES = frozenset({"password", "username", "token", "secret", "credentials", "options", "bind_password", "url", "heartbeats"})


def _field_path(loc: tuple[Any, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def _shown(value: Any, loc: tuple[Any, ...]) -> str:
    if any(str(part) in SECRET_FIELD_NAMES for part in loc):
        return "<hidden>"
    if isinstance(value, (list, dict)) and value:  # never dump a whole list of users or shares
        return f"({type(value).__name__} of {len(value)})"
    text = repr(value)
    if len(text) > 80:
        text = text[:77] + "..."
    return f"{text} ({type(value).__name__})"


def _type_hint(kind: str, value: Any, loc: tuple[Any, ...]) -> str:
    """What to write instead of a value of the wrong type (pydantic's words say only what is
    expected); never quotes a secret."""
    hidden = any(str(part) in SECRET_FIELD_NAMES for part in loc)
    if kind == "string_type" and isinstance(value, int) and not isinstance(value, bool) and str(loc[-1]).endswith("_mode"):
        return f"write it as a string, '{value:04d}' (a number such as 0664 is not read as octal)"
    if kind == "string_type" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return "write it as a string, " + ("in quotes" if hidden else f"'{value}'")
    if kind in ("int_type", "int_parsing", "float_type", "float_parsing") and isinstance(value, str):
        number = value.strip()
        example = number if re.fullmatch(r"-?[0-9]+(\.[0-9]+)?", number) else ("2.0" if kind.startswith("float") else "2002")
        return f"write the number, {example} (without quotes)"
    if kind in ("bool_type", "bool_parsing"):
        return "write True or False (without quotes)"
    if kind == "list_type" and isinstance(value, str):
        return f"write a list, ['{value}']"
    if kind == "list_type":
        return "write a list, [...]"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return "write a dict, {...}"
    return ""


def _problems(error: ValidationError, data: dict[str, Any]) -> list[str]:
    problems = []
    for item in error.errors():
        loc = item["loc"]
        where = _field_path(loc)
        cause = (item.get("ctx") or {}).get("error")
        if item["type"] == "extra_forbidden":
            problems.append(f"{where}: unknown key; {_unknown_key_hint(loc)}")
            continue
        message = item["msg"].removeprefix("Value error, ")
        hint = _type_hint(item["type"], item.get("input"), loc)
        if hint:
            message = f"{message}: {hint}"
        if isinstance(cause, EntryError):
            prefix = _field_path(loc[:-1])  # the entry's own path is in its message
            problems.append(f"{prefix + '.' if prefix else ''}{cause.where}: {cause.message}")
        elif item["type"] == "missing":
            problems.append(f"{where}: required field is missing")
        elif loc:
            problems.append(f"{where} = {_shown(item['input'], loc)}: {message}")
        else:
            problems.append(message)
    return problems


def _unknown_key_hint(loc: tuple[Any, ...]) -> str:
    """'did you mean' the model field, or pyinfra's own connection key, a typo most likely
    meant ('jupyter_user' -> 'users', 'ssh_usr' -> pyinfra's 'ssh_user'); then what is allowed."""
    known = _known_keys_at(loc[:-1])
    key = str(loc[-1])
    allowed = f"allowed: {', '.join(sorted(known))}"
    if len(loc) == 1:  # at the top level, pyinfra's keys sit beside ours
        ours = difflib.get_close_matches(key, known, n=1, cutoff=0.45)
        theirs = difflib.get_close_matches(key, sorted(pyinfra_data_keys()), n=1, cutoff=0.8)
        def score(candidate: str) -> float:
            return difflib.SequenceMatcher(None, key, candidate).ratio()

        if theirs and (not ours or score(theirs[0]) > score(ours[0])):
            return f"did you mean pyinfra's connection key '{theirs[0]}'? (or one of labhub's: {', '.join(sorted(known))})"
    guess = _closest(key, known)
    return f"did you mean '{guess}'? {allowed}" if guess else allowed


def _closest(key: str, known: list[str]) -> str | None:
    """The known key a typo most likely meant ('jupyter_user' -> 'users')."""
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.45)
    if close:
        return close[0]
    return next((k for k in known if k.rstrip("s") in key), None)


def _known_keys_at(loc: tuple[Any, ...]) -> list[str]:
    """Field names of the model found at `loc` (for 'did you mean')."""
    model: Any = LabHost
    for part in loc:
        if isinstance(part, int):
            continue
        annotation = model.model_fields[part].annotation
        args = getattr(annotation, "__args__", ())
        model = next((a for a in args if isinstance(a, type) and hasattr(a, "model_fields")), annotation)
    return list(model.model_fields)


def validate_host_data(host_name: str, data: dict[str, Any], inventory: str | None = None) -> LabHost:
    """The validated config of one host, or ConfigError naming every problem in its data.
    Share and backup credentials come from the environment or the secrets file next to `inventory`."""
    ours = {key: value for key, value in data.items() if key not in pyinfra_data_keys()}
    ours, problems = with_secrets(ours, Secrets(inventory))  # one read of the secrets file for them all
    try:
        config = LabHost.model_validate(ours)
    except ValidationError as error:
        problems = _problems(error, ours) + problems
    if not problems and config.hub.enabled and config.hub.authenticator == "ldap" and config.hub.ldap.admit_group_members:
        try:
            config = with_group_members(config)
        except (DirectoryError, ValueError) as error:
            problems.append(str(error))
    if problems:
        lines = "\n".join(f"  - {problem}" for problem in problems)
        raise ConfigError(f"host '{host_name}': invalid data\n{lines}") from None
    return config


def validate_inventory(hosts, inventory: str | None) -> dict[str, LabHost]:
    """Validate every host; one ConfigError listing all hosts' problems, or their configs."""
    configs, failures = {}, []
    try:  # one unusable secrets file is one error, not one per host and share
        Secrets(inventory).load()
    except SecretsError as error:
        if any(host.data.get("shares") or (host.data.get("backup") or {}).get("enabled") for host in hosts):
            raise ConfigError(f"{error}\nNothing was changed: no host was contacted.") from None
    for host in hosts:
        try:
            configs[host.name] = validate_host_data(host.name, host.data.dict(), inventory)
        except ConfigError as error:
            failures.append(str(error))
    failures += [] if failures else swarm_problems(configs)
    if failures:
        raise ConfigError("\n".join(failures) + "\nNothing was changed: no host was contacted.")
    return configs


def cli_inventory() -> str | None:
    """The inventory file given to the running pyinfra command (for its secrets file)."""
    import click

    context = click.get_current_context(silent=True)
    return context.params.get("inventory") if context else None


# The inventory file of this run, kept from validation: a host outside --limit (a swarm's
# other nodes) is validated later, in deploy code, where click's context is gone.
_inventory_file: list[str | None] = []


def host_config(host) -> LabHost:
    """The validated config of `host` (validated once, before connecting, by config.py)."""
    if host.name not in _validated:
        _validated[host.name] = validate_host_data(host.name, host.data.dict(), _inventory_file[0] if _inventory_file else cli_inventory())
    return _validated[host.name]


def validate_before_connect() -> None:
    """Called from config.py: validate all hosts once pyinfra has built the inventory."""
    from pyinfra.context import ctx_state
    from pyinfra_cli.exceptions import CliError

    state = ctx_state.get()
    pyinfra_init = state.init

    def init_then_validate(inventory, config, **kwargs):
        pyinfra_init(inventory, config, **kwargs)
        hosts = [host for host in inventory if state.is_host_in_limit(host)]
        _inventory_file[:] = [cli_inventory()]
        try:
            _validated.update(validate_inventory(hosts, cli_inventory()))
        except ConfigError as error:
            raise CliError(str(error)) from None

    state.init = init_then_validate


def load_inventory(path: str, cwd: str | None = None) -> list[tuple[str, dict[str, Any]]]:
    """(host name, merged data) for every host of an inventory file, as pyinfra would see
    them, without connecting; for the host checks and the drift check."""
    from pyinfra.api import State
    from pyinfra.context import ctx_state
    from pyinfra_cli.inventory import make_inventory

    from labhub.local import REPO

    repo = cwd or str(REPO)
    with ctx_state.use(State()):
        inventory = make_inventory(path, cwd=repo)
    return [(host.name, host.data.dict()) for host in inventory]


def validated_configs() -> dict[str, LabHost]:
    """Every host's validated config in this run (the nightly check needs the whole lab's)."""
    return dict(_validated)
