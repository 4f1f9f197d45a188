"""A Python virtualenv with pinned requirements, re-installed only when they change."""

from __future__ import annotations

from pyinfra.api import operation

from labhub.ops import facts
from labhub.ops.files import FileLines
from labhub.ops.shell import q, script


@operation()
def venv(directory: str, requirements: str, digest: str):
    """A virtualenv at directory/.venv with requirements installed, re-installed only when
    their digest changed (recorded in the venv); pip trusts the system's CA store."""
    stamp = f"{directory}/.venv/.labhub-requirements"
    if facts.get(FileLines, path=stamp) != [digest]:
        yield script(
            [
                f"python3 -m venv {q(directory + '/.venv')}",
                f"PIP_CERT=/etc/ssl/certs/ca-certificates.crt {q(directory + '/.venv/bin/pip')} install --quiet "
                f"--disable-pip-version-check -r {q(requirements)}",
                f"echo {digest} > {q(stamp)}",
            ]
        )
