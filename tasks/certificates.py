"""Extra CA certificates (a TLS-inspecting proxy, an institute CA) from data, trusted by the
host's system store: apt, curl, Docker's key download and the hub's health checks use it.
tasks/hub.py puts the same certificates into every image build. A certificate removed from
data is removed from the host."""

from pathlib import Path

from pyinfra import host
from pyinfra.api import deploy

from labhub import ops
from labhub.config import local_path
from labhub.inventory import host_config

CA_DIRECTORY = "/usr/local/share/ca-certificates/labhub"


def certificates(paths: list[str]) -> dict[str, bytes]:
    """File name on the host -> PEM content; update-ca-certificates wants *.crt names."""
    return {f"{Path(path).stem}.crt": local_path(path).read_bytes() for path in paths}


@deploy("CA certificates")
def extra():
    wanted = certificates(host_config(host).extra_ca_certificates)
    if wanted:
        ops.packages(name="ca-certificates", install=["ca-certificates"])
    installed = ops.files(
        name="Extra CA certificates",
        directories=[ops.ManagedDirectory(CA_DIRECTORY)] if wanted else [],
        files=[ops.ManagedFile(f"{CA_DIRECTORY}/{name}", pem) for name, pem in wanted.items()],
        purge=[CA_DIRECTORY],
    )
    ops.run_when_changed(
        name="System trust store updated",
        command="update-ca-certificates --fresh >/dev/null",
        triggers=[installed],
    )
