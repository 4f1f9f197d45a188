"""A host under check: its testinfra connection, its validated config, and its state read
with the deploy's own fact commands, once per run, most of it in one command at the start
(what the last run read there, as the deploy reads ahead: labhub/ops/facts.py)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import testinfra
from pyinfra.facts.deb import DebPackages

from labhub.config import BACKUP_SECRETS_DIR, CREDENTIALS_DIR, LabHost
from labhub.ops.accounts import Accounts
from labhub.ops import facts
from labhub.ops.apt import KeyFingerprints
from labhub.ops.files import FileLines, PathStates
from labhub.ops.server import OsRelease
from labhub.ops.systemd import ServiceState

# Reads many checks share, made for all hosts at once before the checks run (a host's
# checks take about as long as these reads and its SSH handshake).
# The engine answers, and the Compose v2 plugin (the binary `docker compose` runs; the same
# path for Debian's, Ubuntu's and Docker's packages) works: cheaper than `docker info`.
DOCKER_INFO = "docker version --format '{{.Server.Version}}' && /usr/libexec/docker/cli-plugins/docker-compose version --short"
WARM_UP_FACTS = (
    (DebPackages, {}),
    (OsRelease, {}),
    (Accounts, {}),
    (FileLines, {"path": "/etc/fstab"}),
    (FileLines, {"path": "/etc/docker/daemon.json"}),
    (KeyFingerprints, {"path": "/etc/apt/keyrings/docker.gpg"}),
    (ServiceState, {"unit": "docker.service"}),
)


def server_account(name: str) -> str:
    """The account a server container is for: jupyter-<name>, or a swarm task's jupyter-<name>.1.<task>."""
    return name.split(".", 1)[0]


@dataclass(frozen=True)
class Answer:
    """What a command on the host answered: as testinfra's CommandResult has it."""

    rc: int
    stdout: str
    stderr: str = ""


@dataclass
class Target:
    name: str
    host: testinfra.host.Host
    config: LabHost
    record: Path | None = None  # what the checks read on this host last time (labhub/ops/facts.py)
    _answers: dict = field(default_factory=dict)
    _facts: dict = field(default_factory=dict)
    _requests: list = field(default_factory=list)  # what this session read, for the next one's warm_up

    def __repr__(self) -> str:
        return self.name

    def run(self, command: str, remember: bool = True) -> Answer:
        """The answer of a read-only command, asked once per session (and, remembered, read
        ahead at the next session's start)."""
        if remember:
            self._requests.append({"run": command})
        if command not in self._answers:
            result = self.host.run(command)
            self._answers[command] = Answer(result.rc, result.stdout, result.stderr)
        return self._answers[command]

    def read(self, command: str) -> str:
        """The output of a read-only command, run once per session (it must succeed)."""
        result = self.run(command)
        assert result.rc == 0, f"{command.split()[0]}: expected it to answer, found: {(result.stderr or result.stdout).strip()}"
        return result.stdout

    def warm_up(self) -> None:
        """Open the connection and make, in one command, the reads most checks share and
        every read the last session made on this host."""
        wanted = [facts.fact_request(fact_class, arguments) for fact_class, arguments in WARM_UP_FACTS]
        wanted += [facts.fact_request(*self._path_request()), {"run": DOCKER_INFO}]
        wanted += facts.load_record(self.record) if self.record else []
        asked, commands = [], []
        for request in wanted:
            if "run" in request:
                asked.append(("run", request["run"]))
                commands.append(request["run"])
                continue
            try:
                fact_class, arguments, command = facts.requested_fact(request)
            except ValueError:
                continue
            asked.append((fact_class, arguments))
            commands.append(command)
        together = facts.Together()
        result = self.host.run(together.command(tuple(commands)))
        for request, (status, lines) in zip(asked, together.process(facts.lines_of(result.stdout))):
            if status != 0:
                continue  # asked again when a check needs it, and its error shown then
            if request[0] == "run":
                self._answers.setdefault(request[1], Answer(0, "".join(f"{line}\n" for line in lines)))
            else:
                fact_class, arguments = request
                with contextlib.suppress(Exception):
                    self._facts.setdefault(self._fact_key(fact_class, arguments), facts.value_of(fact_class(), lines))

    def remember(self) -> None:
        if self.record:
            facts.save_record(self.record, self._requests)

    def path(self, path: str) -> dict | None:
        """type, owner, group, mode and sha256 of a file the checks look at (None: missing);
        all of them are read in one command."""
        return self._path_states().get(path)

    def listing(self, directory: str) -> set[str]:
        """The files in a directory of checked_paths' listings."""
        return {p for p in self._path_states()["%files"] if p.startswith(directory + "/")}

    def _path_request(self) -> tuple:
        return PathStates, {"paths": tuple(sorted(checked_paths(self.config))), "listed": (CREDENTIALS_DIR,)}

    def _path_states(self) -> dict:
        fact_class, arguments = self._path_request()
        return self.fact(fact_class, **arguments)

    @staticmethod
    def _fact_key(fact_class, arguments: dict) -> tuple:
        return fact_class, tuple(sorted(arguments.items()))

    def fact(self, fact_class, **arguments):
        """Read state with one of the deploy's own fact commands: one SSH round trip per
        concern, whatever the number of users or files, cached for the session."""
        self._requests.append(facts.fact_request(fact_class, arguments))
        key = self._fact_key(fact_class, arguments)
        if key not in self._facts:
            fact = fact_class()
            result = self.host.run(facts.command_of(fact, arguments))
            assert result.rc == 0, f"{self.name}: reading {fact_class.__name__} failed: {result.stderr}"
            self._facts[key] = facts.value_of(fact, facts.lines_of(result.stdout))
        return self._facts[key]


def checked_paths(config: LabHost) -> set[str]:
    """Every file and directory the host checks look at, read together."""
    from tasks.backup import ENV_FILE, PASSWORD_FILE
    from tasks.docker import APT_SOURCE, DAEMON_JSON, KEYRING
    from tasks.hub import plan

    paths = {"/", DAEMON_JSON, APT_SOURCE, KEYRING, CREDENTIALS_DIR, *(s.credentials_path for s in config.shares), *(g.path for g in config.groups)}
    if config.hub.enabled:
        paths |= {f.path for f in plan(config).managed_files} | {f"{config.hub.stack_dir}/secrets.env"}
    if config.backup.enabled:
        paths |= {BACKUP_SECRETS_DIR, ENV_FILE, PASSWORD_FILE}
    if config.lab_page_on:
        from tasks.lab_page import helper_files

        paths |= {f.path for f in helper_files(config, "")} | {f"{config.hub.stack_dir}/lab.env"}
    return paths


def _control_directory() -> str:
    """Where ssh keeps its shared connections: one handshake per host, not per command."""
    directory = Path(tempfile.gettempdir()) / f"labhub-ssh-{os.getuid()}"
    directory.mkdir(mode=0o700, exist_ok=True)
    return str(directory)


def connect(name: str, data: dict) -> testinfra.host.Host:
    """A testinfra SSH connection made from the host's pyinfra connection data ('@local':
    this machine, as when a lab server checks itself)."""
    if name.startswith("@local"):
        return testinfra.get_host("local://", sudo=bool(data.get("_sudo")))
    user = f"{data['ssh_user']}@" if data.get("ssh_user") else ""
    spec = f"ssh://{user}{data.get('ssh_hostname', name)}:{data.get('ssh_port', 22)}"
    options = ["-o LogLevel=ERROR"]  # no ssh warnings mixed into command output
    if data.get("ssh_strict_host_key_checking") in ("no", False):
        options.append("-o StrictHostKeyChecking=no")
    if data.get("ssh_known_hosts_file"):
        options.append(f"-o UserKnownHostsFile={data['ssh_known_hosts_file']}")
    return testinfra.get_host(
        spec,
        ssh_identity_file=data.get("ssh_key"),
        ssh_extra_args=" ".join(options),
        sudo=bool(data.get("_sudo")),
        timeout=30,
        controlpath=f"{_control_directory()}/%%C",  # testinfra %-formats the ssh command
    )
