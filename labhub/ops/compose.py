"""A docker compose stack: its generated secrets, and the stack up and answering, brought
up again only when its files or images changed since the last successful `up`."""

from __future__ import annotations

from collections.abc import Sequence

from pyinfra import host, logger, state
from pyinfra.api import FactBase, operation

from labhub.ops import facts
from labhub.ops.shell import HTTP_STATUS, IMAGE_ID, changed, q, script


class EnvKeys(FactBase):
    """The variable names (never the values) set in an env file."""

    default = set

    def command(self, path: str) -> str:
        return f"[ -f {q(path)} ] && sed -n 's/^\\([A-Za-z_][A-Za-z0-9_]*\\)=.*/\\1/p' {q(path)}; true"

    def process(self, output):
        return {line.strip() for line in output if line.strip()}


@operation()
def generated_secrets(path: str, names: Sequence[str]):
    """An env file (root, 0600) with a random 256-bit hex value for each name, generated on
    the host once and kept: no secret ever leaves the host or appears in a command line."""
    missing = [name for name in names if name not in facts.get(EnvKeys, path=path)]
    if missing:
        yield script(
            ["umask 077", f"touch {q(path)}", f"chmod 600 {q(path)}"]
            + [f"echo \"{name}=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n')\" >> {q(path)}" for name in missing]
        )


# What a running stack was brought up from: its files, and the IDs of the images they name.
# (`docker compose config --hash` does not match the running containers' hash for services
# that compose builds, so the stack keeps its own stamp, written after a successful `up`.)
STACK_STAMP = ".labhub-up"


def _stack_digest(files: Sequence[str], images: Sequence[str]) -> str:
    """Shell: the digest of the stack's files and images, computed on the host."""
    return (
        # `|| true`: under `set -e` a missing file (the Caddyfile without TLS) would end the group
        # before the image IDs, and the stamp would never match the fact's digest.
        f"{IMAGE_ID}; {{ cat {' '.join(q(f) for f in files)} 2>/dev/null || true; "
        f"for i in {' '.join(q(i) for i in images)}; do image_id \"$i\" || true; done; }} | sha256sum | cut -d' ' -f1"
    )


class ComposeState(FactBase):
    """A compose stack: its digest now and at the last successful `up` (it covers the
    generated secrets, so it is a digest of 256-bit random values: printable), the state of
    each service's container, the services whose container mounts the Docker socket, and the
    HTTP status of each health URL."""

    def command(self, directory: str, project: str, files: tuple[str, ...], images: tuple[str, ...], health: tuple[tuple[str, str], ...]) -> str:
        checks = "; ".join(f"printf 'H %s %s\\n' {q(service)} \"$({HTTP_STATUS} {check})\"" for service, check in health)
        return (
            f"cd {q(directory)} 2>/dev/null || exit 0; "
            f"printf 'D %s\\n' \"$({_stack_digest(files, images)})\"; "
            f"printf 'S %s\\n' \"$(cat {STACK_STAMP} 2>/dev/null)\"; "
            f"docker ps -a --no-trunc --filter label=com.docker.compose.project={q(project)} "
            "--format 'R {{.Label \"com.docker.compose.service\"}} {{.State}} {{.Mounts}}'; "
            f"{checks + '; ' if checks else ''}true"
        )

    @staticmethod
    def default():
        return {"digest": None, "stamp": None, "running": {}, "health": {}, "socket": set()}

    def process(self, output):
        found = self.default()
        for line in output:
            kind, *fields = line.split()
            if kind == "D" and fields:
                found["digest"] = fields[0]
            elif kind == "S" and fields:
                found["stamp"] = fields[0]
            elif kind == "R" and len(fields) >= 2:
                found["running"][fields[0]] = fields[1]
                if "docker.sock" in " ".join(fields[2:]):
                    found["socket"].add(fields[0])
            elif kind == "H" and len(fields) == 2:
                found["health"][fields[0]] = fields[1]
        return found


@operation()
def up(
    directory: str,
    project: str,
    health: dict[str, str],  # service -> curl arguments (shell words) that get HTTP 200 when it is up
    files: Sequence[str],
    images: Sequence[str],
    wait_seconds: int = 300,
    up_when: Sequence = (),
    recreate_when: dict[str, Sequence] | None = None,
    url: str = "",
    services: Sequence[str] = (),
    socket_holders: Sequence[str] = (),
):
    """`docker compose up` when the stack's files or images changed since the last successful
    `up`, or a service is not running (compose recreates only the containers whose own
    configuration changed); then wait until every health URL answers 200, or fail with the
    failing service's last log lines. `recreate_when`: service -> earlier operations whose
    change (files it reads only at start, such as a certificate) recreates that service.
    `services`: all of the stack's (those without a health URL too); a container that mounts
    the Docker socket outside `socket_holders` is recreated as compose.yaml says."""
    now = facts.get(ComposeState, directory=directory, project=project, files=tuple(files), images=tuple(images), health=tuple(health.items()))
    stopped = [service for service in (services or health) if now["running"].get(service) != "running"]
    unhealthy = [service for service in health if now["health"].get(service) != "200"]
    bring_up = bool(stopped) or not now["stamp"] or now["stamp"] != now["digest"] or changed(up_when)
    if bring_up:
        yield script(
            [
                f"cd {q(directory)}",
                # A deploy cut off during `up` leaves it running on the host (building the hub's
                # image, say): wait for it rather than race it. ([d]: not this script itself.)
                f"deadline=$(( $(date +%s) + {wait_seconds} ))",
                "while pgrep -f '[d]ocker-compose compose up' >/dev/null; do [ $(date +%s) -lt $deadline ] || break; sleep 2; done",
                "if ! docker compose up --detach --remove-orphans --quiet-pull; then "
                "docker compose logs --no-color --tail 30 >&2; exit 1; fi",
            ]
        )
    recreate = [service for service, ops in (recreate_when or {}).items() if changed(ops)]
    recreate += sorted(service for service in now["socket"] - set(socket_holders) if socket_holders and service not in recreate)
    if recreate:
        yield script([f"cd {q(directory)}", f"docker compose up --detach --no-deps --force-recreate {' '.join(q(s) for s in recreate)}"])
    if bring_up or unhealthy or recreate:
        waits = [
            f"until [ \"$({HTTP_STATUS} {check})\" = 200 ]; do "
            f"if [ $(date +%s) -ge $deadline ]; then echo {q(f'{service} did not answer 200 on {check.split()[-1].strip(chr(39))} within {wait_seconds} s; its last log lines:')} >&2; "
            f"docker compose logs --no-color --tail 30 {q(service)} >&2; exit 1; fi; sleep 2; done"
            for service, check in health.items()
        ]
        # Stamped only once healthy: a stack that never came up is brought up again next run.
        yield script(
            [f"cd {q(directory)}", f"deadline=$(( $(date +%s) + {wait_seconds} ))", *waits, f"{_stack_digest(files, images)} > {STACK_STAMP}"]
        )
    if url and state.is_executing:
        host.log(f"JupyterHub: {url}", logger.info)
