"""Helpers every operation module uses: shell quoting, one remote script per operation,
and change triggers that keep `--dry` honest."""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Sequence

from pyinfra.api import StringCommand

# Shell: the HTTP status code of a URL (000 when nothing answers within 5 s).
HTTP_STATUS = "curl -s -o /dev/null -m 5 -w '%{http_code}'"
# Shell: `image_id REF` prints the engine's ID of an image (status 1 if it has none), through
# the engine's API where curl is there (its answer begins with the ID): the docker CLI costs
# ~30 ms of CPU a call, which a whole-stack no-op paid six times; the CLI without curl.
IMAGE_ID = (
    "image_id() { if command -v curl >/dev/null 2>&1; then "
    "curl -sf --unix-socket /var/run/docker.sock \"http://localhost/images/$1/json\" | sed -n 's/^{\"Id\":\"\\([^\"]*\\)\".*/\\1/p' | grep .; "
    "else i=$(docker image inspect --format '{{.Id}}' \"$1\" 2>/dev/null) && echo \"$i\"; fi; }"
)


def q(value: object) -> str:
    return shlex.quote(str(value))


def changed(ops: Iterable) -> bool:
    """Whether any of these earlier operations changed (or, before execution, will change).

    Unlike `_if=op.did_change`, which pyinfra ignores while planning, this keeps `--dry`
    honest: a restart shows in the plan only when its trigger does.
    """
    return any(op.did_change() if op.is_complete() else op.will_change for op in ops)


def script(lines: Sequence[str]) -> StringCommand:
    """One remote command for many steps: one round trip, stops at the first failure."""
    return StringCommand("set -e\n" + "\n".join(lines))
