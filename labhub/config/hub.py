"""The JupyterHub + registry stack and its notebook images."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from labhub.local import IMAGE_CONTEXTS

from labhub.config.disk import SIZE, check_device, check_size
from labhub.config.common import ONE_LINE, Model, _check_unique, check_calendar, check_labels, check_image_reference, check_own_path, check_url
from labhub.config.ldap import Ldap, check_ldap
from labhub.config.login import Login
from labhub.config.tls import Tls, check_certificate_files, tls_name


# The hub stack. Images are pinned; a lab that mirrors them sets hub.*_image and build args.
HUB_BASE_IMAGE = "quay.io/jupyterhub/jupyterhub:5.4.3"
REGISTRY_IMAGE = "docker.io/library/registry:2.8.3"
NOTEBOOK_BASE_IMAGE = "quay.io/jupyter/minimal-notebook:2025-03-03"
IMAGE_NAME = re.compile(r"[a-z0-9]+([._-][a-z0-9]+)*")


BUILD_ARG = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# The line an image's Dockerfile carries where labhub injects the step that trusts the extra CA
# certificates (files/ca-trust.dockerfile), as root: one copy for every image.
CA_TRUST_MARKER = "# labhub: trust the extra CA certificates here"


def check_memory(limit: str | None) -> str | None:
    if limit is not None and not SIZE.fullmatch(limit):
        raise ValueError("must be a size such as '512M' or '4G'")
    return limit


def check_cpu(limit: float | None) -> float | None:
    if limit is not None and limit <= 0:
        raise ValueError("must be more than 0 cores")
    return limit


Gpus = int | Literal["all"]  # NVIDIA GPUs a server gets: a number, or all the host has


def check_gpus(gpus: Gpus | None) -> Gpus | None:
    if isinstance(gpus, int) and not 1 <= gpus <= 64:
        raise ValueError("must be a number of GPUs (1-64) or 'all'")
    return gpus



class NotebookImage(Model):
    """A notebook image users can start: built on the host, pushed to the stack's registry."""

    name: str = Field(description="repository in the local registry; the image is localhost:5000/<name>:<hash of its build context>")
    context: str = Field("notebook", validate_default=True, description="build context: a directory under files/images/ with a Dockerfile")
    display_name: str | None = Field(None, description="name shown in the spawn form when there are several images; none: the name")
    build_args: dict[str, str] = Field(
        default_factory=dict, description=f"Docker build arguments, e.g. BASE_IMAGE (default in files/images/notebook: {NOTEBOOK_BASE_IMAGE})"
    )
    gpus: Gpus | None = Field(None, description="NVIDIA GPUs in each server started from it: a number or 'all' (the host needs nvidia_gpus)")
    node_labels: dict[str, str] = Field(default_factory=dict, description="in a swarm lab: servers from it run only on nodes with these labels (swarm.labels)")

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if not IMAGE_NAME.fullmatch(name) or len(name) > 64:
            raise ValueError("an image name must be lower-case letters and digits, separated by '.', '_' or '-'")
        return name

    @field_validator("context")
    @classmethod
    def _context(cls, context: str) -> str:
        dockerfile = IMAGE_CONTEXTS / context / "Dockerfile"
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", context) or not dockerfile.is_file():
            known = sorted(p.name for p in IMAGE_CONTEXTS.iterdir() if (p / "Dockerfile").is_file()) if IMAGE_CONTEXTS.is_dir() else []
            raise ValueError(f"must name a directory of files/images/ with a Dockerfile (there: {', '.join(known) or 'none'})")
        check_ca_trust_marker(dockerfile)
        return context

    _gpus = field_validator("gpus")(check_gpus)
    _node_labels = field_validator("node_labels")(check_labels)

    @field_validator("display_name")
    @classmethod
    def _display_name(cls, name: str | None) -> str | None:
        if name is not None and (not ONE_LINE.fullmatch(name) or len(name) > 80):
            raise ValueError("a display name must be one line of at most 80 characters")
        return name

    @field_validator("build_args")
    @classmethod
    def _build_args(cls, build_args: dict[str, str]) -> dict[str, str]:
        for key, value in build_args.items():
            if not BUILD_ARG.fullmatch(key):
                raise ValueError(f"build argument '{key}': a name must be letters, digits and '_', not starting with a digit")
            if value and not ONE_LINE.fullmatch(value):
                raise ValueError(f"build argument '{key}': its value must be one line")
        return build_args


def check_ca_trust_marker(dockerfile: Path) -> None:
    """Every image a lab builds trusts the extra CA certificates: its Dockerfile says where."""
    if CA_TRUST_MARKER not in dockerfile.read_text().splitlines():
        raise ValueError(
            f"{dockerfile.relative_to(IMAGE_CONTEXTS.parent.parent)} has no line '{CA_TRUST_MARKER}': add it after "
            "'FROM' and 'USER root'; labhub puts the step that trusts the lab's extra CA certificates there"
        )


class Hub(Model):
    """The JupyterHub + registry stack (docker compose) and how users' servers run."""

    enabled: bool = Field(True, description="run the stack on this host; False: no hub here (an existing stack is left alone)")
    stack_dir: str = Field("/opt/jupyterhub", description="root-owned directory holding compose.yaml, the hub's config and secrets")
    port: int = Field(8000, description="port the hub listens on: on 127.0.0.1 only with TLS (the host's own checks); on bind_address with tls.mode none")
    bind_address: str = Field("0.0.0.0", description="address HTTPS (443) and its redirect (80) are published on; with tls.mode none, the hub's port")
    public_url: str | None = Field(
        None, description="URL users open, e.g. https://hub.lab.example.org/: its name is the certificate's; none: http://<host>:<port>/ (tls.mode none only)"
    )
    tls: Tls = Field(default_factory=Tls, description="HTTPS through Caddy: mode acme (default), files, or none")
    base_image: str = Field(HUB_BASE_IMAGE, description="JupyterHub image the hub's own image is built FROM (files/hub/Dockerfile)")
    registry_image: str = Field(REGISTRY_IMAGE, description="Docker distribution (registry) image; published on 127.0.0.1:5000 only")
    authenticator: Literal["firstuse", "native", "ldap"] = Field(
        "firstuse", description="'firstuse': a listed user's first login sets the password; 'native': NativeAuthenticator, users in data sign up at /hub/signup, open signup off; "
        "'ldap': users in data log in with their directory password (hub.ldap)"
    )
    ldap: Ldap = Field(default_factory=Ldap, description="the directory, for hub.authenticator 'ldap'")
    min_password_length: int = Field(8, description="shortest password a user may set")
    login: Login = Field(default_factory=Login, description="the login page's text (the lab's name, whom to ask) and the failed-login throttle")
    images: list[NotebookImage] = Field(
        default_factory=lambda: [NotebookImage(name="notebook")],
        description="notebook images users may start (an allow-list; the first is the default)",
    )
    mem_limit: str = Field("4G", description="memory limit of each user's container (K, M, G, T)")
    tmp_size: str | None = Field(
        None, description="size of /tmp in a member's server: a tmpfs, whose pages count against her memory limit, so her scratch "
        "files never fill the host's disk (K, M, G, T); none: half her memory limit"
    )
    server_layer_limit: str = Field(
        "10G", description="what a member's server may write outside her home, /tmp and the shares (its container's writable "
        "layer, on the host's disk: packages installed into the image's paths, say) before the host checks name it (K, M, G, T)"
    )
    home_quota: str | None = Field(
        None, description="the most a member's home may hold, enforced by the kernel (a project quota on the homes' filesystem: XFS "
        "mounted with prjquota, or hub.homes_device); users[].home_quota overrides it (K, M, G, T); none: no limit"
    )
    homes_device: str | None = Field(
        None, description="an empty disk or logical volume (e.g. /dev/sdb, /dev/vg0/homes) labhub formats as XFS and mounts at /home "
        "with project quotas, moving the homes onto it; a device that holds anything is refused; none: /home stays where it is"
    )
    lab_page: bool | None = Field(
        None, description="the lab's page in the hub (/services/lab/, in its Services menu): each member's disk use, limits and her own "
        "restores from the nightly backup; the admins' overview of members, filesystems and the backup; none: on with backups or quotas"
    )
    cpu_limit: float = Field(2.0, description="CPU limit of each user's container, in cores")
    pids_limit: int = Field(1024, description="processes and threads each user's container may run (a fork bomb stops there, not at the host)")
    idle_timeout: int = Field(3600, description="seconds of inactivity after which a user's server is stopped (jupyterhub-idle-culler); 0: never")
    start_timeout: int = Field(600, description="seconds a server may take to start (long enough for a first image pull)")
    ready_timeout: int = Field(300, description="seconds the deploy waits for the hub and the registry to answer before it fails")
    registry_keep: int = Field(
        3, description="newest tags of each image the registry keeps; older ones are deleted and garbage-collected (weekly and "
        "after a rebuild), except the tags the hub allows and those a container uses"
    )
    registry_prune_calendar: str = Field("Sun *-*-* 04:00:00", description="when the registry's retention runs besides after a rebuild (systemd OnCalendar)")

    @property
    def local_address(self) -> str:
        """Where the host itself reaches what is published on bind_address."""
        return "127.0.0.1" if self.bind_address == "0.0.0.0" else self.bind_address

    @property
    def tls_mode(self) -> str:
        """tls.mode, or what an unset one means: HTTPS through ACME for a hub with a public name."""
        if self.tls.mode is not None:
            return self.tls.mode
        return "acme" if tls_name(self.public_url) else "none"

    @model_validator(mode="after")
    def _ldap_is_complete(self) -> Hub:
        if self.enabled and self.authenticator == "ldap":
            check_ldap(self.ldap)
        return self

    @model_validator(mode="after")
    def _setup_codes_have_a_field(self) -> Hub:
        """JupyterHub's login form has the code's field from 5.0 on (Authenticator.request_otp)."""
        major = re.match(r"(\d+)\.", self.base_image.rpartition(":")[2])
        if self.authenticator == "firstuse" and self.login.first_login == "setup-code" and major and int(major.group(1)) < 5:
            raise ValueError(f"hub.login.first_login 'setup-code' needs JupyterHub 5 or later (its login form's code field); hub.base_image is "
                             f"{self.base_image!r}: use a 5.x image, or set hub.login.first_login: 'open'")
        return self

    @model_validator(mode="after")
    def _tls_has_a_name(self) -> Hub:
        if not self.enabled or self.tls_mode == "none":
            return self
        name = tls_name(self.public_url)
        if name is None:
            raise ValueError(
                f"hub.tls.mode is '{self.tls.mode}': hub.public_url must be the hub's https:// address with its DNS name, "
                "e.g. 'https://hub.lab.example.org/' (the certificate is for that name)"
            )
        if self.tls.mode == "files":
            if not (self.tls.certificate and self.tls.key):
                raise ValueError("hub.tls.mode is 'files': set hub.tls.certificate and hub.tls.key (PEM files on this machine)")
            check_certificate_files(self.tls.certificate, self.tls.key, name)
        return self

    @field_validator("port")
    @classmethod
    def _port(cls, port: int) -> int:
        if not 1 <= port <= 65535 or port == 5000:
            raise ValueError("must be a TCP port 1-65535 other than 5000 (the registry's)")
        return port

    @field_validator("bind_address")
    @classmethod
    def _address(cls, address: str) -> str:
        import ipaddress

        try:
            ipaddress.ip_address(address)
        except ValueError:
            raise ValueError("must be an IP address such as 0.0.0.0 or 127.0.0.1") from None
        return address

    _stack_dir = field_validator("stack_dir")(check_own_path)
    _public_url = field_validator("public_url")(check_url)

    _image_references = field_validator("base_image", "registry_image")(check_image_reference)

    _memory = field_validator("mem_limit", "server_layer_limit")(check_memory)

    _home_quota = field_validator("home_quota")(check_size)
    _homes_device = field_validator("homes_device")(check_device)

    @field_validator("tmp_size")
    @classmethod
    def _tmp_size(cls, size: str | None) -> str | None:
        return None if size is None else check_memory(size)

    _cpu = field_validator("cpu_limit")(check_cpu)

    _registry_prune_calendar = field_validator("registry_prune_calendar")(check_calendar)

    @field_validator("registry_keep")
    @classmethod
    def _keep(cls, count: int) -> int:
        if not 1 <= count <= 1000:
            raise ValueError("must be 1-1000 tags (the hub's own images are kept whatever this says)")
        return count

    @field_validator("pids_limit")
    @classmethod
    def _pids(cls, limit: int) -> int:
        if limit < 64:
            raise ValueError("must be at least 64 (a Jupyter server and its kernels need dozens)")
        return limit

    @field_validator("min_password_length", "idle_timeout", "start_timeout", "ready_timeout")
    @classmethod
    def _not_negative(cls, value: int) -> int:
        if value < 0:
            raise ValueError("must not be negative")
        return value

    @field_validator("images")
    @classmethod
    def _images(cls, images: list[NotebookImage]) -> list[NotebookImage]:
        if not images:
            raise ValueError("at least one notebook image is needed")
        _check_unique("hub.images", [i.name for i in images], [])
        return images
