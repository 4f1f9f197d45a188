"""A lab of several servers as one Docker Swarm (swarm.role): the hub's engine is the manager,
with the attachable overlay network its JupyterHub and the members' servers share; workers
join with a token the hub gives during the run; each node of the lab is active with exactly
its labels; a node that left the lab's data is drained, then removed, and leaves (first in
the run: its engine then goes back to one-server settings).

Notebook images reach every node by being built on each under the same content-derived tag
(tasks/hub.py notebook_images): no registry has to be reachable beyond the hub's loopback,
which would need TLS and credentials on every node, and a node builds only when the build
context changed."""

from pyinfra import host
from pyinfra.api import deploy

from labhub.config import LabHost
from labhub.config.swarm import SWARM_NETWORK
from labhub.inventory import host_config
from labhub.local import archive_images, certificates, file_identity, local_path
from labhub.ops import apt, files, images, swarm
from tasks.hub import notebook_images


def swarm_nodes() -> dict[str, LabHost]:
    """Every node of the lab's swarm by inventory name, hosts outside --limit included (a
    node outside the limit is still in the lab, and must not be drained)."""
    configs = {other.name: host_config(other) for other in host.state.inventory}
    return {name: config for name, config in configs.items() if config.swarm.role}


@deploy("Swarm departures")
def departures():
    """First in the run: the hub drains and removes nodes the lab no longer has, then a host
    whose swarm.role is gone leaves, before its engine is set up for one server."""
    config = host_config(host)
    if config.swarm.role == "hub":
        swarm.departed(name="Nodes no longer in the lab drained and removed", lab=sorted(swarm_nodes()), network=SWARM_NETWORK)
    if config.swarm.role is None:
        swarm.left(name="Out of any swarm (no swarm.role)")


@deploy("Swarm")
def membership():
    config = host_config(host)
    role = config.swarm.role
    nodes = swarm_nodes() if role else {}
    hub_name = next((name for name, node in nodes.items() if node.swarm.role == "hub"), None)
    if role == "hub":
        swarm.manager(name="Swarm manager, overlay network", advertise_address=config.swarm.advertise_address, network=SWARM_NETWORK)
    if role == "worker":
        apt.packages(name="curl (the join request)", install=["curl"], settings=config.apt)
        swarm.worker(
            name="Swarm membership",
            hub_name=hub_name,
            hub_address=nodes[hub_name].swarm.advertise_address,
            advertise_address=config.swarm.advertise_address,
        )
    if role == "hub":
        swarm.nodes(name="Swarm nodes: the lab's, with their labels", wanted={name: node.swarm.labels for name, node in nodes.items()}, network=SWARM_NETWORK)


@deploy("Swarm images")
def worker_images():
    """A worker builds the hub's notebook images under the hub's tags."""
    config = host_config(host)
    if config.swarm.role != "worker":
        return
    hub = next(node for node in swarm_nodes().values() if node.swarm.role == "hub")
    contexts, builds = notebook_images(hub, certificates(hub.extra_ca_certificates))
    root = f"{hub.hub.stack_dir}/images"  # where the builds (the hub's) look for their contexts
    images.load_archives(
        name="Image archives loaded",
        archives=[images.ImageArchive(str(local_path(p)), archive_images(*file_identity(p))) for p in config.image_archives],
    )
    files.managed(
        name="Notebook images' build contexts",
        directories=[
            files.ManagedDirectory(hub.hub.stack_dir),
            files.ManagedDirectory(root),
            *[files.ManagedDirectory(f"{root}/{name}{sub}") for name in contexts for sub in ("", "/ca-certificates")],
        ],
        files=[files.ManagedFile(f"{root}/{name}/{path}", data) for name, context in contexts.items() for path, data in context.items()],
        purge=[f"{root}/{name}/ca-certificates" for name in contexts],
    )
    images.built(name="Notebook images built (the hub's tags)", images=builds)
