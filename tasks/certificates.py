"""Extra CA certificates (a TLS-inspecting proxy, an institute CA) from data, trusted by the
host's system store: apt, curl, Docker's key download and the hub's health checks use it.
tasks/hub.py puts the same certificates into every image build. A certificate removed from
data is removed from the host."""

from pyinfra import host
from pyinfra.api import deploy

from labhub.inventory import host_config
from labhub.local import certificates
from labhub.ops import apt, files, server

CA_DIRECTORY = "/usr/local/share/ca-certificates/labhub"


@deploy("CA certificates")
def extra():
    config = host_config(host)
    wanted = certificates(config.extra_ca_certificates)
    if wanted:
        apt.packages(name="ca-certificates", install=["ca-certificates"], settings=config.apt)
    installed = files.managed(
        name="Extra CA certificates",
        directories=[files.ManagedDirectory(CA_DIRECTORY)] if wanted else [],
        files=[files.ManagedFile(f"{CA_DIRECTORY}/{name}", pem) for name, pem in wanted.items()],
        purge=[CA_DIRECTORY],
    )
    server.run_when_changed(
        name="System trust store updated",
        command="update-ca-certificates --fresh >/dev/null",
        triggers=[installed],
    )
