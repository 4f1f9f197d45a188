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
import ipaddress
import json
from dataclasses import dataclass
from pathlib import Path

from pyinfra import host, logger
from pyinfra.api import deploy

from labhub.config import CA_TRUST_MARKER, LabHost
from labhub.config.swarm import SWARM_NETWORK
from labhub.config.tls import HSTS_MAX_AGE, tls_name
from labhub.hub_settings import NETWORK, hub_settings
from labhub.inventory import host_config
from labhub.local import IMAGE_CONTEXTS, REPO, archive_images, certificates, directory_files, file_identity, local_path
from labhub.ops import apt, compose, files, images, systemd
from labhub.ops.shell import q
from labhub.templates import render
from tasks import lab_page
from tasks.alerts import HEARTBEAT_SCRIPT

PROJECT = "jupyterhub"  # compose project: containers jupyterhub-hub-1, jupyterhub-registry-1
REGISTRY = "localhost:5000"  # Docker trusts a registry on the loopback without TLS
HUB_CONTEXT = REPO / "files" / "hub"
HUB_CONFIG = REPO / "files" / "jupyterhub_config.py"
LOGIN_GUARD = REPO / "files" / "login_guard.py"  # imported by the hub's configuration: the failed-login throttle, setup codes
LOGIN_ADMIN = REPO / "files" / "login_admin.py"  # the sysadmin's commands in the hub's container (set-password, setup-code)
DOCKER_API_PROXY = REPO / "files" / "docker-api-proxy"  # the hub's allow-list to the Docker Engine (policy.py)
DOCKER_API_SERVICE = "docker-api"  # its compose service: the one container with the Docker socket
PROXY_HEALTH_PORT = 2080  # the TLS proxy answers its container's health check here, on its loopback
# The step that trusts the lab's extra CA certificates, put into every image's Dockerfile
# where it carries CA_TRUST_MARKER: one copy for the hub's image and every notebook image.
CA_TRUST_STEP = REPO / "files" / "ca-trust.dockerfile"
SECRETS = ("JPY_COOKIE_SECRET", "CONFIGPROXY_AUTH_TOKEN")
LAB_SECRETS = ("LABHUB_LAB_TOKEN",)  # lab.env: the lab page's hub API token, read by the hub and the page alone
PRUNE_SCRIPT = "/usr/local/sbin/labhub-registry-prune"  # the registry's retention (files/labhub-registry-prune)
PRUNE_REPORT = "/var/lib/labhub/registry-prune.json"  # its last run: what it deleted, the registry's size before and after
# What the running stack depends on besides its images: a change in one brings it up anew.
STACK_STAMPED_FILES = ("compose.yaml", "secrets.env", "lab.env", "jupyterhub_config.py", "login_guard.py", "login_admin.py", "labhub.json", "Caddyfile")
# The stack's own services: enough for a class of 100 (docs/benchmarks.md), a ceiling on a runaway.
SERVICE_LIMITS = {"hub_memory": "2g", "hub_pids": 2048, "registry_memory": "512m", "proxy_memory": "256m", "docker_api_memory": "128m",
                  "lab_memory": "256m", "service_pids": 256}
HUB_DATABASE = "/srv/jupyterhub/data/jupyterhub.sqlite"  # in the hub's container, as files/jupyterhub_config.py sets it
PROXY_TLS_DIR = "/etc/caddy/tls"  # the stack's tls/ directory, inside the proxy's container


def context_files(directory: Path, ca_certificates: dict[str, bytes]) -> dict[str, bytes]:
    """A build context: the directory's files, its Dockerfile with the CA trust step put in
    at CA_TRUST_MARKER, and the CA certificates in ca-certificates/."""
    found = directory_files(directory)
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


def ldap_files(config: LabHost) -> list:
    """The directory's service account password (root, 0600, in a 0700 directory)."""
    ldap = config.hub.ldap
    if config.hub.authenticator != "ldap" or ldap.credentials is None:
        return []
    password = ldap.credentials.bind_password.get_secret_value()
    return [files.ManagedFile(f"{config.hub.stack_dir}/ldap/bind-password", password, mode=0o600, secret=True)]


def proxy_files(config: LabHost) -> tuple[list, list, dict | None]:
    """The TLS terminator: its Caddyfile, the lab's certificate and key (mode files; the key
    root-only, never printed) and its compose settings; nothing when tls.mode is none."""
    hub, tls = config.hub, config.hub.tls
    mode = hub.tls_mode
    if mode == "none":
        return [], [], None
    root = hub.stack_dir
    certificate = key = None
    certificate_files = []
    if mode == "files":
        certificate, key = f"{PROXY_TLS_DIR}/certificate.pem", f"{PROXY_TLS_DIR}/key.pem"
        certificate_files = [
            files.ManagedFile(f"{root}/tls/certificate.pem", local_path(tls.certificate).read_bytes()),
            files.ManagedFile(f"{root}/tls/key.pem", local_path(tls.key).read_bytes(), mode=0o600, secret=True),
        ]
    caddyfile = render(
        "Caddyfile",
        site=tls_name(hub.public_url),
        acme_ca=tls.acme_ca if mode == "acme" else None,
        acme_email=tls.acme_email if mode == "acme" else None,
        certificate=certificate,
        key=key,
        hsts_max_age=HSTS_MAX_AGE,
        health_port=PROXY_HEALTH_PORT,
    )
    # The key is left out of the digest (it cannot change without the certificate).
    stamped = {"Caddyfile": caddyfile.encode(), **({"certificate": certificate_files[0].data} if certificate_files else {})}
    proxy = {"image": tls.proxy_image, "digest": digest(stamped), "files": mode == "files", "health_port": PROXY_HEALTH_PORT}
    return [files.ManagedFile(f"{root}/Caddyfile", caddyfile)], certificate_files, proxy


def notebook_images(config: LabHost, ca: dict[str, bytes]) -> tuple[dict[str, dict[str, bytes]], list]:
    """Each notebook image's build context (name -> files) and build, tagged with a digest of
    what it is built from: the same tag wherever it is built (the swarm's nodes build their own)."""
    contexts, builds = {}, []
    for image in [*config.hub.images, *(image for group in config.groups for image in group.images)]:
        contexts[image.name] = context_files(IMAGE_CONTEXTS / image.context, ca)
        args = tuple(sorted(image.build_args.items()))
        tag = digest(contexts[image.name], repr(args))
        builds.append(images.ImageBuild(f"{REGISTRY}/{image.name}:{tag}", image.name, tag, f"{config.hub.stack_dir}/images/{image.name}", args))
    return contexts, builds


@dataclass(frozen=True)
class StackPlan:
    """Everything the stack on one host consists of, computed from its validated config."""

    files: list  # files.ManagedFile
    directories: list  # files.ManagedDirectory
    purge: list[str]  # directories whose other files are removed
    builds: list  # images.ImageBuild: notebook images
    hub_image: str
    certificate_files: list  # files.ManagedFile: the proxy's certificate and key (tls.mode files)
    hub_secret_files: list  # files.ManagedFile: the hub's own secrets from the lab (the directory's bind password)
    health: dict[str, str]  # service -> curl arguments (shell words) that get HTTP 200 when it is up
    images_used: list[str]  # the images the stack's containers run
    services: list[str]  # the stack's compose services

    @property
    def managed_files(self) -> list:
        """Every file the deploy writes for the stack: what the host checks compare."""
        return [*self.files, *self.certificate_files, *self.hub_secret_files]


def plan(config: LabHost) -> StackPlan:
    hub, root = config.hub, config.hub.stack_dir
    ca = certificates(config.extra_ca_certificates)
    hub_context = context_files(HUB_CONTEXT, ca)
    hub_image = f"labhub/hub:{digest(hub_context, hub.base_image)}"
    contexts, builds = notebook_images(config, ca)
    refs = {build.name: build.ref for build in builds}

    hub_config = HUB_CONFIG.read_text()
    login_guard, login_admin = LOGIN_GUARD.read_text(), LOGIN_ADMIN.read_text()
    settings = json.dumps(hub_settings(config, refs), indent=2, sort_keys=True) + "\n"
    docker_api = {p.name: p.read_bytes() for p in sorted(DOCKER_API_PROXY.glob("*.py"))}
    proxy_config, certificate_files, proxy = proxy_files(config)
    page = lab_page.page_files(config)
    hub_secret_files = ldap_files(config)
    address = hub.local_address
    compose_file = render(
        "compose.yaml",
        project=PROJECT,
        network=SWARM_NETWORK if config.swarm.role else NETWORK,
        swarm=bool(config.swarm.role),
        hub_base_image=hub.base_image,
        hub_image=hub_image,
        registry_image=hub.registry_image,
        config_digest=digest({"config": hub_config.encode(), "settings": settings.encode(), "login": login_guard.encode(), "admin": login_admin.encode()}),
        docker_api_digest=digest({**docker_api, "settings": settings.encode()}),
        bind_address=hub.bind_address,
        hub_address="127.0.0.1" if proxy else hub.bind_address,
        port=hub.port,
        proxy=proxy,
        ldap_password=bool(hub_secret_files),
        limits=SERVICE_LIMITS,
        lab_page={"digest": digest({**page, "settings": settings.encode()})} if page else None,
    )
    build_dirs = [f"{root}/hub", *[f"{root}/images/{image}" for image in contexts]]
    health = {"hub": q(f"http://{'127.0.0.1' if proxy else address}:{hub.port}/hub/health"), "registry": q("http://127.0.0.1:5000/v2/")}
    if proxy:
        # Through the proxy by the hub's name, as users come: answers once the certificate is
        # there (issued, for ACME). -k: the host need not trust the lab's CA; the host checks
        # verify the certificate itself.
        name = tls_name(hub.public_url)
        health["proxy"] = f"-k --resolve {q(f'{name}:443:{address}')} {q(f'https://{name}/hub/health')}"
    if page:  # through the hub's proxy, as members come: the hub has its route
        health["lab"] = q(f"http://{'127.0.0.1' if proxy else address}:{hub.port}/services/lab/health")
    return StackPlan(
        files=[
            files.ManagedFile(f"{root}/compose.yaml", compose_file),
            files.ManagedFile(f"{root}/jupyterhub_config.py", hub_config),
            files.ManagedFile(f"{root}/login_guard.py", login_guard),
            files.ManagedFile(f"{root}/login_admin.py", login_admin),
            files.ManagedFile(f"{root}/labhub.json", settings),
            *[files.ManagedFile(f"{root}/docker-api-proxy/{name}", content) for name, content in docker_api.items()],
            *[files.ManagedFile(f"{root}/hub/{name}", content) for name, content in hub_context.items()],
            *[files.ManagedFile(f"{root}/lab/{name}", content) for name, content in page.items()],
            *[files.ManagedFile(f"{root}/images/{image}/{name}", data) for image, context in contexts.items() for name, data in context.items()],
            *proxy_config,
        ],
        directories=[
            files.ManagedDirectory(root),
            files.ManagedDirectory(f"{root}/docker-api-proxy"),
            *[files.ManagedDirectory(f"{root}/{d}") for d in sorted({"lab", *(f"lab/{Path(n).parent}" for n in page if "/" in n)}) if page],
            *([files.ManagedDirectory(f"{root}/tls", mode=0o700)] if proxy and proxy["files"] else []),
            *([files.ManagedDirectory(f"{root}/ldap", mode=0o700)] if hub_secret_files else []),
            files.ManagedDirectory(f"{root}/images"),
            *[files.ManagedDirectory(d) for d in build_dirs],
            *[files.ManagedDirectory(f"{d}/ca-certificates") for d in build_dirs],
        ],
        purge=[f"{d}/ca-certificates" for d in build_dirs] + ([f"{root}/lab"] if page else []),
        builds=builds,
        hub_image=hub_image,
        certificate_files=certificate_files,
        hub_secret_files=hub_secret_files,
        health=health,
        images_used=[hub_image, hub.registry_image, *([proxy["image"]] if proxy else [])],
        services=["hub", DOCKER_API_SERVICE, "registry", *(["proxy"] if proxy else []), *(["lab"] if page else [])],
    )


@deploy("JupyterHub")
def stack():
    config = host_config(host)
    hub = config.hub
    if not hub.enabled or config.swarm.role == "worker":
        return
    stack = plan(config)

    apt.packages(name="curl, openssl, python3 (health checks, the registry's retention)", install=["curl", "openssl", "python3"], settings=config.apt)
    images.load_archives(
        name="Image archives loaded",
        archives=[images.ImageArchive(str(local_path(p)), archive_images(*file_identity(p))) for p in config.image_archives],
    )
    stack_files = files.managed(name="Stack files", directories=stack.directories, files=stack.files, purge=stack.purge)
    certificate = files.managed(name="TLS certificate and key", directories=[], files=stack.certificate_files) if stack.certificate_files else None
    hub_secrets = files.managed(name="Hub's directory password", files=stack.hub_secret_files) if stack.hub_secret_files else None
    secrets = compose.generated_secrets(name="Hub secrets (generated on the host)", path=f"{hub.stack_dir}/secrets.env", names=SECRETS)
    lab_secrets = compose.generated_secrets(name="Lab page's hub token (generated on the host)", path=f"{hub.stack_dir}/lab.env", names=LAB_SECRETS) if config.lab_page_on else None
    compose.up(
        name="Hub and registry up and answering",
        directory=hub.stack_dir,
        project=PROJECT,
        health=stack.health,
        files=STACK_STAMPED_FILES,
        images=stack.images_used,
        wait_seconds=hub.ready_timeout,
        up_when=[stack_files, secrets, *([lab_secrets] if lab_secrets else [])],
        recreate_when={**({"proxy": [certificate]} if certificate else {}), **({"hub": [hub_secrets]} if hub_secrets else {})},
        url=hub.public_url or f"http://{host.data.get('ssh_hostname') or host.name}:{hub.port}/",
        services=stack.services,
        socket_holders=[DOCKER_API_SERVICE],
    )
    if hub.tls_mode == "none" and not ipaddress.ip_address(hub.bind_address).is_loopback:
        host.log(f"hub.tls.mode is none: the hub is served over plain HTTP on {hub.bind_address}:{hub.port}, passwords included; set hub.public_url: https://<its DNS name>/ for HTTPS", logger.warning)
    pushed = images.in_registry(name="Notebook images in the registry", images=stack.builds, registry=REGISTRY)
    prune = {"keep": hub.registry_keep, "stack_dir": hub.stack_dir, "volume": f"{PROJECT}_registry-data",
             "script": PRUNE_SCRIPT, "heartbeat": HEARTBEAT_SCRIPT, "on_calendar": hub.registry_prune_calendar}
    retention = systemd.timer(
        "labhub-registry-prune", render("labhub-registry-prune.service", **prune), render("labhub-registry-prune.timer", **prune),
        what="Registry retention: script, service and timer",
        extra_files=[files.ManagedFile(PRUNE_SCRIPT, (REPO / "files" / "labhub-registry-prune").read_text(), mode=0o755)],
    )
    systemd.run_now(name="Old images pruned from the registry", unit="labhub-registry-prune.service", when=[pushed, retention])
