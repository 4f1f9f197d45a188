"""The lab's JupyterHub and its private image registry: one docker compose stack in
hub.stack_dir (compose.yaml, jupyterhub_config.py, labhub.json, the hub's build context, a
generated secrets.env), brought up only when something in it changed, waited for until both
answer; then the notebook images, built on the host and pushed to the registry.

Images are tagged with a digest of what they are built from, so they are rebuilt exactly
when their build context (Dockerfile, files, CA certificates, build arguments) changes, and
compose recreates a container only when its own configuration changed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from pyinfra import host
from pyinfra.api import deploy

from labhub.config import CA_TRUST_MARKER, LabHost
from labhub.inventory import host_config
from labhub.local import IMAGE_CONTEXTS, REPO, archive_images, certificates, file_identity, local_path
from labhub.ops import apt, compose, files, images
from labhub.templates import render

PROJECT = "jupyterhub"  # compose project: containers jupyterhub-hub-1, jupyterhub-registry-1
NETWORK = "jupyterhub"  # the hub and the users' servers meet here
REGISTRY = "localhost:5000"  # Docker trusts a registry on the loopback without TLS
HUB_CONTEXT = REPO / "files" / "hub"
HUB_CONFIG = REPO / "files" / "jupyterhub_config.py"
# The step that trusts the lab's extra CA certificates, put into every image's Dockerfile
# where it carries CA_TRUST_MARKER: one copy for the hub's image and every notebook image.
CA_TRUST_STEP = REPO / "files" / "ca-trust.dockerfile"
SECRETS = ("JPY_COOKIE_SECRET", "CONFIGPROXY_AUTH_TOKEN")
# What the running stack depends on besides its images: a change in one brings it up anew.
STACK_STAMPED_FILES = ("compose.yaml", "secrets.env", "jupyterhub_config.py", "labhub.json")


def context_files(directory: Path, ca_certificates: dict[str, bytes]) -> dict[str, bytes]:
    """A build context: the directory's files, its Dockerfile with the CA trust step put in
    at CA_TRUST_MARKER, and the CA certificates in ca-certificates/."""
    found = {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}
    found["Dockerfile"] = with_ca_trust_step(found["Dockerfile"].decode()).encode()
    found.update({f"ca-certificates/{name}": pem for name, pem in ca_certificates.items()})
    return found


def with_ca_trust_step(dockerfile: str) -> str:
    """The Dockerfile with its CA_TRUST_MARKER line replaced by the trust step."""
    step = CA_TRUST_STEP.read_text().rstrip("\n")
    return "\n".join(step if line == CA_TRUST_MARKER else line for line in dockerfile.split("\n"))


def digest(files: dict[str, bytes], *extra: str) -> str:
    summary = hashlib.sha256()
    for name in sorted(files):
        summary.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    for item in extra:
        summary.update(b"\0" + item.encode())
    return summary.hexdigest()[:12]


def hub_settings(config: LabHost, images: dict[str, str]) -> dict:
    """labhub.json: what files/jupyterhub_config.py needs to know about the lab."""
    hub = config.hub
    return {
        "authenticator": hub.authenticator,
        "min_password_length": hub.min_password_length,
        "users": [{"name": u.name, "account": u.account, "admin": u.admin} for u in config.users],
        "images": images,
        "shares": [{"path": s.mount_point, "read_only": s.read_only} for s in config.shares],
        "network": NETWORK,
        "mem_limit": hub.mem_limit,
        "cpu_limit": hub.cpu_limit,
        "idle_timeout": hub.idle_timeout,
        "start_timeout": hub.start_timeout,
    }


@dataclass(frozen=True)
class StackPlan:
    """Everything the stack on one host consists of, computed from its validated config."""

    files: list  # files.ManagedFile
    directories: list  # files.ManagedDirectory
    purge: list[str]  # directories whose other files are removed
    builds: list  # images.ImageBuild: notebook images
    hub_image: str
    health: dict[str, str]  # service -> URL that answers 200 when it is up


def plan(config: LabHost) -> StackPlan:
    hub, root = config.hub, config.hub.stack_dir
    ca = certificates(config.extra_ca_certificates)
    hub_context = context_files(HUB_CONTEXT, ca)
    hub_image = f"labhub/hub:{digest(hub_context, hub.base_image)}"
    contexts, builds = {}, []
    for image in hub.images:
        contexts[image.name] = context_files(IMAGE_CONTEXTS / image.context, ca)
        args = tuple(sorted(image.build_args.items()))
        tag = digest(contexts[image.name], repr(args))
        builds.append(images.ImageBuild(f"{REGISTRY}/{image.name}:{tag}", image.name, tag, f"{root}/images/{image.name}", args))
    allowed = {(image.display_name or image.name): build.ref for image, build in zip(hub.images, builds)}

    hub_config = HUB_CONFIG.read_text()
    settings = json.dumps(hub_settings(config, allowed), indent=2, sort_keys=True) + "\n"
    compose_file = render(
        "compose.yaml",
        project=PROJECT,
        network=NETWORK,
        hub_base_image=hub.base_image,
        hub_image=hub_image,
        registry_image=hub.registry_image,
        config_digest=digest({"config": hub_config.encode(), "settings": settings.encode()}),
        bind_address=hub.bind_address,
        port=hub.port,
    )
    build_dirs = [f"{root}/hub", *[f"{root}/images/{image}" for image in contexts]]
    address = "127.0.0.1" if hub.bind_address == "0.0.0.0" else hub.bind_address
    return StackPlan(
        files=[
            files.ManagedFile(f"{root}/compose.yaml", compose_file),
            files.ManagedFile(f"{root}/jupyterhub_config.py", hub_config),
            files.ManagedFile(f"{root}/labhub.json", settings),
            *[files.ManagedFile(f"{root}/hub/{name}", content) for name, content in hub_context.items()],
            *[files.ManagedFile(f"{root}/images/{image}/{name}", data) for image, context in contexts.items() for name, data in context.items()],
        ],
        directories=[
            files.ManagedDirectory(root),
            files.ManagedDirectory(f"{root}/images"),
            *[files.ManagedDirectory(d) for d in build_dirs],
            *[files.ManagedDirectory(f"{d}/ca-certificates") for d in build_dirs],
        ],
        purge=[f"{d}/ca-certificates" for d in build_dirs],
        builds=builds,
        hub_image=hub_image,
        health={"hub": f"http://{address}:{hub.port}/hub/health", "registry": "http://127.0.0.1:5000/v2/"},
    )


@deploy("JupyterHub")
def stack():
    config = host_config(host)
    hub = config.hub
    if not hub.enabled:
        return
    stack = plan(config)

    apt.packages(name="curl (the stack's health checks)", install=["curl"], settings=config.apt)
    images.load_archives(
        name="Image archives loaded",
        archives=[images.ImageArchive(str(local_path(p)), archive_images(*file_identity(p))) for p in config.image_archives],
    )
    stack_files = files.managed(name="Stack files", directories=stack.directories, files=stack.files, purge=stack.purge)
    secrets = compose.generated_secrets(name="Hub secrets (generated on the host)", path=f"{hub.stack_dir}/secrets.env", names=SECRETS)
    compose.up(
        name="Hub and registry up and answering",
        directory=hub.stack_dir,
        project=PROJECT,
        health=stack.health,
        files=STACK_STAMPED_FILES,
        images=[stack.hub_image, hub.registry_image],
        wait_seconds=hub.ready_timeout,
        up_when=[stack_files, secrets],
        url=hub.public_url or f"http://{host.data.get('ssh_hostname') or host.name}:{hub.port}/",
    )
    images.in_registry(name="Notebook images in the registry", images=stack.builds, registry=REGISTRY)
