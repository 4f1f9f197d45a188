"""The one config model: everything a host's data can say, each field with its default and meaning.

Host data comes from the inventory and `group_data/` (pyinfra merges them); `labhub.inventory`
validates it into a `LabHost` before any connection is made, and every task reads only that.
`python -m labhub.reference` prints this model as the reference table in docs/configuration.md.

Every pattern here must match a whole value (`re.fullmatch`): a value with a trailing newline
or a shell metacharacter never reaches a host.
"""

from __future__ import annotations

import json
import posixpath
import re
import tarfile
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from labhub.local import IMAGE_CONTEXTS, archive_images, file_identity, is_pem_certificate, local_path

# Host accounts of hub users are "jupyter-<name>"; useradd takes at most 32 characters.
JUPYTER_PREFIX = "jupyter-"
MAX_UNIX_NAME = 32
MAX_HUB_NAME = MAX_UNIX_NAME - len(JUPYTER_PREFIX)
UNIX_NAME = re.compile(r"[a-z_][a-z0-9_-]*")
UNIX_NAME_RULE = "lower-case letters, digits, '_' or '-', starting with a letter or '_'"
UID_MIN, UID_MAX = 1000, 60000  # Debian/Ubuntu login.defs range for regular accounts

# Names a lab member may not take: accounts and groups of a Debian/Ubuntu base system and of
# the packages this tool installs, plus names with a role in the hub or in Docker.
RESERVED_NAMES = frozenset(
    """
    root daemon bin sys sync games man lp mail news uucp proxy www-data backup list irc gnats
    nobody nogroup _apt systemd-network systemd-resolve systemd-timesync systemd-journal
    systemd-coredump messagebus sshd syslog uuidd tcpdump tss polkitd dnsmasq avahi landscape
    pollinate fwupd-refresh usbmux lxd ubuntu debian admin adm sudo wheel staff users shadow
    utmp video audio plugdev netdev input kvm render docker dockremap containerd jupyter
    jupyterhub hub proxy registry operator
    """.split()
)

# Docker's release key (https://download.docker.com/linux/debian/gpg), as Docker documents it.
DOCKER_RELEASE_KEY_FINGERPRINT = "9DC858229FC7DD38854AE2D88D81803C0EBFCD88"
DOCKER_DOWNLOAD_URL = "https://download.docker.com/linux"

# /etc/docker/daemon.json unless data says otherwise: rotate container logs so a chatty
# notebook cannot fill the disk, and keep containers running while dockerd restarts.
DAEMON_JSON_DEFAULTS: dict[str, Any] = {
    "log-driver": "json-file",
    "log-opts": {"max-size": "10m", "max-file": "3"},
    "live-restore": True,
}

# CIFS shares: credentials live here, one root-only file per share, never in /etc/fstab.
CREDENTIALS_DIR = "/etc/labhub/credentials"
# SMB dialects worth offering (mount.cifs `vers=`); SMB1 ("1.0") is refused: insecure.
SMB_VERSIONS = ("3.1.1", "3.02", "3.0", "2.1", "default")
# Mounting a share over these would hide the system.
SYSTEM_PATHS = frozenset(
    "/ /bin /boot /dev /etc /home /lib /lib32 /lib64 /opt /proc /root /run /sbin /srv /sys /tmp /usr /var".split()
)
# mount.cifs options the model sets from its own fields (or that would carry a secret).
SHARE_OPTIONS_FROM_FIELDS = frozenset(
    "user username pass password password2 credentials cred uid gid file_mode dir_mode vers domain dom workgroup ro rw".split()
)
MOUNT_OPTION = re.compile(r"[a-z_][a-z0-9_.-]*(=[^,\s]+)?")
OCTAL_MODE = re.compile(r"[0-7]{3,4}")

# The hub stack. Images are pinned; a lab that mirrors them sets hub.*_image and build args.
HUB_BASE_IMAGE = "quay.io/jupyterhub/jupyterhub:5.4.3"
REGISTRY_IMAGE = "docker.io/library/registry:2.8.3"
NOTEBOOK_BASE_IMAGE = "quay.io/jupyter/minimal-notebook:2025-03-03"
IMAGE_NAME = re.compile(r"[a-z0-9]+([._-][a-z0-9]+)*")
# A Docker image reference: [registry[:port]/]path[:tag][@sha256:digest], as Docker parses it.
IMAGE_REFERENCE = re.compile(
    r"[A-Za-z0-9]+(?:[.-][A-Za-z0-9]+)*(?::[0-9]+)?(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[0-9a-f]{64})?"
)
MEMORY = re.compile(r"[0-9]+(\.[0-9]+)?[KMGT]")
# http(s) URLs of plain characters: no spaces, quotes, '$', '`' or backslashes, which a URL
# need not have and a shell line or a unit file could misread.
URL = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~%/+=:@,;!*()-]*)?(\?[A-Za-z0-9._~%/+=:@,;!*()&-]*)?")
URL_RULE = "an http:// or https:// URL of letters, digits and . _ ~ % / + = : @ , ; - (no spaces, quotes, '$' or '`')"
# apt fields (version pins, suites, components): what Debian's policy allows in them.
APT_WORD = re.compile(r"[A-Za-z0-9.+:~_/-]+")
# Text shown to users (display names): printable, one line.
ONE_LINE = re.compile(r"[^\x00-\x1f\x7f]+")
BUILD_ARG = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# The line an image's Dockerfile carries where labhub injects the step that trusts the extra CA
# certificates (files/ca-trust.dockerfile), as root: one copy for every image.
CA_TRUST_MARKER = "# labhub: trust the extra CA certificates here"

# Groups that make an account root-equivalent or let it read the system's secrets: a lab
# member's account is never in one (validation refuses them as its primary group, the
# accounts operation removes members from them, the host checks look for them). `docker`
# holds exactly the lab's admins. `admin` is Ubuntu's old sudo group (%admin may sudo there).
PRIVILEGED_GROUPS = ("root", "sudo", "admin", "wheel", "docker", "adm", "shadow", "disk", "lxd")

# Operating systems this tool supports: os-release ID -> VERSION_ID values.
SUPPORTED_OS = {"debian": ("12", "13"), "ubuntu": ("22.04", "24.04")}


class Model(BaseModel):
    # strict: "1001" is not a UID and "yes" is not a bool; forbid: a typo is an error, not a no-op.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def check_unix_name(name: str, max_length: int, what: str) -> str:
    if not UNIX_NAME.fullmatch(name):
        raise ValueError(f"{what} must be {UNIX_NAME_RULE}")
    if len(name) > max_length:
        raise ValueError(f"{what} must be at most {max_length} characters, got {len(name)}")
    if name in RESERVED_NAMES:
        raise ValueError(f"{what} is reserved for the system (root, docker, daemon, ...)")
    return name


def is_plain_path(path: str) -> bool:
    """A normalised absolute path of plain characters: nothing a shell or a unit file misreads."""
    return bool(re.fullmatch(r"/[A-Za-z0-9._/-]+", path)) and posixpath.normpath(path) == path


def check_own_path(path: str) -> str:
    """A normalised absolute path of plain characters that is not a system directory."""
    if not is_plain_path(path):
        raise ValueError("must be a normalised absolute path of letters, digits, '.', '_', '-', '/' (no spaces, quotes or '..')")
    if path in SYSTEM_PATHS:
        raise ValueError(f"{path} is a system directory: using it would hide the system; use e.g. /mnt/<name> or /opt/<name>")
    return path


def check_uid(uid: int | None) -> int | None:
    if uid is not None and not UID_MIN <= uid <= UID_MAX:
        raise ValueError(f"UID must be between {UID_MIN} and {UID_MAX} (regular accounts)")
    return uid


def check_url(url: str | None) -> str | None:
    if url is not None and not URL.fullmatch(url):
        raise ValueError(f"must be {URL_RULE}")
    return url


def check_calendar(spec: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9*:,./ ~-]+", spec):
        raise ValueError("must be a systemd calendar expression such as '*-*-* 03:30:00' or 'daily'")
    return spec


class EntryError(ValueError):
    """A problem with one entry of a list: reported as `users[5]: ...`, naming that entry and
    never dumping the whole list."""

    def __init__(self, where: str, message: str):
        super().__init__(f"{where}: {message}")
        self.where, self.message = where, message


def expand_name_shorthand(value: Any) -> Any:
    """Lets data say `"alice"` where it means `{"name": "alice"}`."""
    return {"name": value} if isinstance(value, str) else value


class Admin(Model):
    """A lab sysadmin's host account: created if missing, member of `docker`."""

    name: str = Field(description="host login name (not 'jupyter-*'; the account is created if missing)")
    uid: int | None = Field(None, description=f"fixed UID ({UID_MIN}-{UID_MAX}); none: useradd picks")

    _shorthand = model_validator(mode="before")(expand_name_shorthand)

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        check_unix_name(name, MAX_UNIX_NAME, "an admin name")
        if name.startswith(JUPYTER_PREFIX):
            raise ValueError(f"an admin name must not start with '{JUPYTER_PREFIX}' (hub users do)")
        return name

    _uid = field_validator("uid")(check_uid)


class HubUser(Model):
    """A lab member: hub login `<name>`, host account `jupyter-<name>`."""

    name: str = Field(description=f"hub login name, at most {MAX_HUB_NAME} characters; host account is 'jupyter-<name>'")
    uid: int | None = Field(None, description=f"fixed UID ({UID_MIN}-{UID_MAX}) of the host account; none: useradd picks")
    group: str = Field("users", description="primary group of the host account (GID 100 'users' by default; created if missing)")
    shell: str = Field("/bin/bash", description="login shell of the host account")
    admin: bool = Field(False, description="JupyterHub admin (sees and manages other users' servers)")

    _shorthand = model_validator(mode="before")(expand_name_shorthand)

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        return check_unix_name(name, MAX_HUB_NAME, "a hub user name")

    _uid = field_validator("uid")(check_uid)

    @field_validator("group")
    @classmethod
    def _group(cls, group: str) -> str:
        if not UNIX_NAME.fullmatch(group) or len(group) > MAX_UNIX_NAME:
            raise ValueError(f"a group name must be {UNIX_NAME_RULE}, at most {MAX_UNIX_NAME} characters")
        if group in PRIVILEGED_GROUPS:
            raise ValueError(f"a hub user's group must not grant root, Docker or the system's secrets ({', '.join(PRIVILEGED_GROUPS)})")
        return group

    @field_validator("shell")
    @classmethod
    def _shell(cls, shell: str) -> str:
        if not is_plain_path(shell):
            raise ValueError("a shell must be a plain absolute path such as /bin/bash (no spaces, quotes or shell characters)")
        return shell

    @property
    def account(self) -> str:
        return JUPYTER_PREFIX + self.name


class DockerEngine(Model):
    """Where Docker Engine and Compose v2 come from, and how dockerd is configured."""

    source: Literal["official", "distro", "mirror"] = Field(
        "official",
        description="'official': Docker's apt repository; 'distro': the distribution's docker.io + Compose v2; "
        "'mirror': Docker's packages from an apt mirror you name",
    )
    version: str | None = Field(None, description="pin docker-ce/docker-ce-cli to this apt version (official/mirror); none: newest")
    repo_url: str | None = Field(None, description=f"apt URL (official: {DOCKER_DOWNLOAD_URL}/<debian|ubuntu>; mirror: required)")
    repo_suite: str | None = Field(None, description="apt suite (official: the OS codename; mirror: required)")
    repo_component: str = Field("stable", description="apt component")
    key_url: str | None = Field(None, description="URL of the repository's signing key (official: <repo_url>/gpg; mirror: required)")
    key_fingerprint: str | None = Field(
        None,
        description=f"the signing key's fingerprint, checked before apt trusts the key (official: {DOCKER_RELEASE_KEY_FINGERPRINT}; mirror: required)",
    )
    daemon_json: dict[str, Any] = Field(
        default_factory=dict,
        description="keys merged over the defaults of /etc/docker/daemon.json (json-file logs 10m x 3, live-restore); "
        "a key set to None is dropped",
    )

    @field_validator("key_fingerprint")
    @classmethod
    def _fingerprint(cls, fingerprint: str | None) -> str | None:
        if fingerprint is None:
            return None
        normalised = fingerprint.replace(" ", "").upper()
        if not re.fullmatch(r"[0-9A-F]{40}", normalised):
            raise ValueError("a key fingerprint must be 40 hexadecimal digits (spaces allowed)")
        return normalised

    @field_validator("repo_url", "key_url")
    @classmethod
    def _url(cls, url: str | None) -> str | None:
        check_url(url)
        return url.rstrip("/") if url else url

    @field_validator("version", "repo_suite", "repo_component")
    @classmethod
    def _apt_word(cls, word: str | None) -> str | None:
        if word is not None and not APT_WORD.fullmatch(word):
            raise ValueError("must be letters, digits and . + : ~ _ / - only (as apt writes versions and suites)")
        return word

    @field_validator("daemon_json")
    @classmethod
    def _no_tcp_socket(cls, daemon_json: dict[str, Any]) -> dict[str, Any]:
        hosts = daemon_json.get("hosts") or []
        if not isinstance(hosts, list):
            raise ValueError("daemon_json.hosts must be a list of sockets, e.g. ['unix:///run/docker.sock']")
        if any(not str(h).startswith(("unix://", "fd://")) for h in hosts):
            raise ValueError("daemon_json.hosts may only name unix:// or fd:// sockets: a TCP Docker port is root for anyone who reaches it")
        return daemon_json

    @model_validator(mode="after")
    def _source_fields(self) -> DockerEngine:
        repo_fields = ("version", "repo_url", "repo_suite", "key_url", "key_fingerprint")
        if self.source == "distro":
            given = [f for f in repo_fields if getattr(self, f) is not None]
            if given:
                raise ValueError(f"{', '.join(given)} only apply to source 'official' or 'mirror', not 'distro'")
        if self.source == "mirror":
            missing = [f for f in ("repo_url", "repo_suite", "key_url", "key_fingerprint") if getattr(self, f) is None]
            if missing:
                raise ValueError(f"source 'mirror' needs {', '.join(missing)}")
        return self

    def daemon_config(self) -> dict[str, Any]:
        merged = {**DAEMON_JSON_DEFAULTS, **self.daemon_json}
        return {key: value for key, value in merged.items() if value is not None}


class ShareCredentials(Model):
    """A file-server account. Never from host data: see labhub/secrets.py."""

    username: str = Field(description="account on the file server")
    password: SecretStr = Field(description="its password")

    @field_validator("username")
    @classmethod
    def _username(cls, username: str) -> str:
        if not re.fullmatch(r"[^\x00-\x1f\x7f=,]+", username):
            raise ValueError("a file-server account must be one line without '=' or ','")
        return username

    @field_validator("password")
    @classmethod
    def _password(cls, password: SecretStr) -> SecretStr:
        if re.search(r"[\x00-\x1f\x7f]", password.get_secret_value()):  # the credentials file is one line per key
            raise ValueError("a share password must not contain a line break or other control character (not shown)")
        return password


class Share(Model):
    """A CIFS/SMB share of the institute's file server: fstab line, credentials file, mount."""

    name: str = Field(description="identifier (lower-case, digits, '-', '_'): names the credentials file and the secrets entry")
    server: str = Field(description="file server host name or IP address")
    share: str = Field(description="share name on the server, optionally with a sub-path ('data' for //server/data)")
    mount_point: str = Field(description="absolute path where the share is mounted, on the host and in user containers")
    read_only: bool = Field(False, description="mount read-only ('ro'); otherwise read-write ('rw')")
    uid: str | int = Field("root", description="owner of the share's files on the host: account name (root, an admin, 'jupyter-<name>') or number")
    gid: str | int = Field("users", description="group of the share's files on the host: group name ('users', a user's group) or number")
    file_mode: str = Field("0664", description="mode of the share's files on the host (octal)")
    dir_mode: str = Field("0775", description="mode of the share's directories on the host (octal)")
    smb_version: str = Field("3.1.1", description=f"SMB dialect (mount.cifs vers=): {', '.join(SMB_VERSIONS)}; SMB1 is refused")
    domain: str | None = Field(None, description="Windows domain (workgroup) of the account, if the server wants one")
    options: list[str] = Field(
        default_factory=list,
        description="extra mount.cifs options, e.g. 'port=4450', 'mfsymlinks', 'seal'. Shares are mounted at boot "
        "(_netdev,nofail: boot never waits for the server), not by x-systemd.automount: the hub bind-mounts shares "
        "into user containers, which need the real mount, not an autofs trigger",
    )
    credentials: ShareCredentials | None = Field(
        None, description="never from host data: from LABHUB_SHARE_<NAME>_USERNAME/_PASSWORD or the inventory's secrets file"
    )

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,31}", name):
            raise ValueError("a share name must be 1-32 lower-case letters, digits, '-' or '_', starting with a letter or digit")
        return name

    @field_validator("server")
    @classmethod
    def _server(cls, server: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9a-fA-F:]+\]", server):
            raise ValueError("a server must be a host name or an IP address (no '//', no share)")
        return server

    @field_validator("share")
    @classmethod
    def _share(cls, share: str) -> str:
        if not share or share.startswith("/") or re.search(r"[\\,\x00-\x1f]", share):
            raise ValueError("a share must be the name after //server/ (no leading '/', no backslash, comma or control characters)")
        return share

    _mount_point = field_validator("mount_point")(check_own_path)

    @field_validator("uid", "gid")
    @classmethod
    def _owner(cls, owner: str | int) -> str | int:
        if isinstance(owner, int):
            if owner < 0:
                raise ValueError("must be a name or a number >= 0")
        elif not UNIX_NAME.fullmatch(owner):
            raise ValueError(f"must be a number or a name of {UNIX_NAME_RULE}")
        return owner

    @field_validator("file_mode", "dir_mode")
    @classmethod
    def _mode(cls, mode: str) -> str:
        if not OCTAL_MODE.fullmatch(mode):
            raise ValueError("must be an octal mode such as '0664' (a string: 0664 as a number is not octal)")
        return mode.zfill(4)

    @field_validator("smb_version")
    @classmethod
    def _version(cls, version: str) -> str:
        if version not in SMB_VERSIONS:
            raise ValueError(f"must be one of {', '.join(SMB_VERSIONS)} (SMB1 '1.0' is insecure and refused)")
        return version

    @field_validator("domain")
    @classmethod
    def _domain(cls, domain: str | None) -> str | None:
        if domain is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", domain):
            raise ValueError("a domain (workgroup) must be letters, digits, '.', '_' or '-'")
        return domain

    @field_validator("options")
    @classmethod
    def _options(cls, options: list[str]) -> list[str]:
        for option in options:  # messages name the option, never its value (it could be a secret)
            key = option.split("=", 1)[0]
            if not MOUNT_OPTION.fullmatch(option):
                raise ValueError(f"option '{key}' is not of the form name or name=value (no spaces or commas)")
            if key in SHARE_OPTIONS_FROM_FIELDS:
                raise ValueError(f"'{key}' is set from the share's own fields (or is a secret, which never goes in data)")
            if key.startswith("x-systemd.automount"):
                raise ValueError("x-systemd.automount is not supported: user containers need the real mount")
        return options

    @property
    def source(self) -> str:
        return f"//{self.server}/{self.share}"

    @property
    def credentials_path(self) -> str:
        return f"{CREDENTIALS_DIR}/{self.name}"


class NotebookImage(Model):
    """A notebook image users can start: built on the host, pushed to the stack's registry."""

    name: str = Field(description="repository in the local registry; the image is localhost:5000/<name>:<hash of its build context>")
    context: str = Field("notebook", validate_default=True, description="build context: a directory under files/images/ with a Dockerfile")
    display_name: str | None = Field(None, description="name shown in the spawn form when there are several images; none: the name")
    build_args: dict[str, str] = Field(
        default_factory=dict, description=f"Docker build arguments, e.g. BASE_IMAGE (default in files/images/notebook: {NOTEBOOK_BASE_IMAGE})"
    )

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
    port: int = Field(8000, description="port the hub is published on")
    bind_address: str = Field("0.0.0.0", description="address the hub is published on (0.0.0.0: all; put TLS in front, e.g. a reverse proxy)")
    public_url: str | None = Field(None, description="URL users open, printed by the deploy; none: http://<host>:<port>/")
    base_image: str = Field(HUB_BASE_IMAGE, description="JupyterHub image the hub's own image is built FROM (files/hub/Dockerfile)")
    registry_image: str = Field(REGISTRY_IMAGE, description="Docker distribution (registry) image; published on 127.0.0.1:5000 only")
    authenticator: Literal["firstuse", "native"] = Field(
        "firstuse", description="'firstuse': a listed user's first login sets the password; 'native': NativeAuthenticator, users in data sign up at /hub/signup, open signup off"
    )
    min_password_length: int = Field(8, description="shortest password a user may set")
    images: list[NotebookImage] = Field(
        default_factory=lambda: [NotebookImage(name="notebook")],
        description="notebook images users may start (an allow-list; the first is the default)",
    )
    mem_limit: str = Field("4G", description="memory limit of each user's container (K, M, G, T)")
    cpu_limit: float = Field(2.0, description="CPU limit of each user's container, in cores")
    idle_timeout: int = Field(3600, description="seconds of inactivity after which a user's server is stopped (jupyterhub-idle-culler); 0: never")
    start_timeout: int = Field(600, description="seconds a server may take to start (long enough for a first image pull)")
    ready_timeout: int = Field(300, description="seconds the deploy waits for the hub and the registry to answer before it fails")

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

    @field_validator("base_image", "registry_image")
    @classmethod
    def _image_reference(cls, reference: str) -> str:
        if not IMAGE_REFERENCE.fullmatch(reference):
            raise ValueError("must be a Docker image reference such as 'quay.io/jupyterhub/jupyterhub:5.4.3'")
        return reference

    @field_validator("mem_limit")
    @classmethod
    def _memory(cls, limit: str) -> str:
        if not MEMORY.fullmatch(limit):
            raise ValueError("must be a size such as '512M' or '4G'")
        return limit

    @field_validator("cpu_limit")
    @classmethod
    def _cpu(cls, limit: float) -> float:
        if limit <= 0:
            raise ValueError("must be more than 0 cores")
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


# Backups (tasks/backup.py): restic, which Debian and Ubuntu package. Its repository password
# and any S3 keys live in this root-only directory on the host, never in a unit file.
BACKUP_SECRETS_DIR = "/etc/labhub/backup"
# A restic repository: a local path (e.g. on a mounted share of the file server), or
# sftp:user@host:/path, or s3:https://host/bucket/path (restic's own spellings).
BACKUP_REPOSITORY = re.compile(r"/[A-Za-z0-9._/-]+|sftp:[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:/[A-Za-z0-9._/-]+|s3:https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?/[A-Za-z0-9._/-]+")
RESTIC_SNAPSHOT_ID = re.compile(r"[0-9a-f]{8,64}")


class BackupCredentials(Model):
    """The repository's secrets. Never from host data: see labhub/secrets.py."""

    password: SecretStr = Field(description="the restic repository password (encrypts the backups)")
    aws_access_key_id: SecretStr | None = Field(None, description="S3 repositories: the access key")
    aws_secret_access_key: SecretStr | None = Field(None, description="S3 repositories: the secret key")

    @field_validator("password")
    @classmethod
    def _one_line(cls, secret: SecretStr) -> SecretStr:
        if not secret.get_secret_value() or re.search(r"[\x00-\x1f\x7f]", secret.get_secret_value()):
            raise ValueError("must be one non-empty line without control characters (not shown)")
        return secret

    @field_validator("aws_access_key_id", "aws_secret_access_key")
    @classmethod
    def _key(cls, secret: SecretStr | None) -> SecretStr | None:
        # They are quoted in an env file that both systemd and the shell read.
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9/+=._-]+", secret.get_secret_value()):
            raise ValueError("an S3 key must be letters, digits and / + = . _ - (not shown)")
        return secret


class Backup(Model):
    """Nightly encrypted, deduplicated backups with restic: the jupyter-* homes, the hub's state
    (its database, the authenticator's passwords and the generated secrets) and, optionally,
    the registry's images. The same settings tell a fresh host where to restore from."""

    enabled: bool = Field(False, description="back this host up on a schedule (a systemd timer, output in the journal)")
    repository: str | None = Field(
        None,
        description="restic repository: a local path (e.g. '/mnt/backup/labhub', on a mounted share), "
        "'sftp:user@host:/path' (root's SSH key and known_hosts on the host reach it) or 's3:https://host/bucket/path'",
    )
    on_calendar: str = Field("*-*-* 02:30:00", description="when it runs (systemd OnCalendar; a missed run is caught up at boot)")
    keep_daily: int = Field(7, description="daily snapshots kept (restic forget --keep-daily)")
    keep_weekly: int = Field(4, description="weekly snapshots kept")
    keep_monthly: int = Field(6, description="monthly snapshots kept")
    registry: bool = Field(False, description="also back up the registry's images (they can be rebuilt from files/images)")
    max_age_hours: int = Field(36, description="the drift check reports the backup when its last success is older than this")
    credentials: BackupCredentials | None = Field(
        None, description="never from host data: LABHUB_BACKUP_PASSWORD (and _AWS_ACCESS_KEY_ID, _AWS_SECRET_ACCESS_KEY) or [backup] in the inventory's secrets file"
    )

    _on_calendar = field_validator("on_calendar")(check_calendar)

    @field_validator("repository")
    @classmethod
    def _repository(cls, repository: str | None) -> str | None:
        if repository is not None and (not BACKUP_REPOSITORY.fullmatch(repository) or ".." in repository.split("/")):
            raise ValueError("must be a plain absolute path ('/mnt/backup/labhub'), 'sftp:user@host:/path' or 's3:https://host/bucket/path'")
        return repository

    @field_validator("keep_daily", "keep_weekly", "keep_monthly")
    @classmethod
    def _keep(cls, count: int) -> int:
        if not 0 <= count <= 1000:
            raise ValueError("must be 0-1000 snapshots")
        return count

    @field_validator("max_age_hours")
    @classmethod
    def _age(cls, hours: int) -> int:
        if hours < 1:
            raise ValueError("must be at least 1 hour")
        return hours

    @model_validator(mode="after")
    def _keeps_something(self) -> Backup:
        if self.enabled and not (self.keep_daily or self.keep_weekly or self.keep_monthly):
            raise ValueError("keep_daily, keep_weekly and keep_monthly are all 0: every snapshot would be forgotten")
        return self

    @property
    def is_s3(self) -> bool:
        return bool(self.repository and self.repository.startswith("s3:"))



class DriftSchedule(Model):
    """The nightly drift check, installed on this host when enabled: this host is then the
    control host that checks the inventory's hosts (itself included, via '@local')."""

    enabled: bool = Field(False, description="install the nightly check here (a systemd service and timer)")
    inventory: str = Field(
        "inventories/lab.py", description="inventory the nightly check reads: a file on this machine, copied with the project"
    )
    checkout: str = Field("/opt/labhub", description="where the project is installed on the control host")
    on_calendar: str = Field("*-*-* 03:30:00", description="when it runs (systemd OnCalendar; missed runs are caught up at boot)")
    report_dir: str = Field("/var/lib/labhub/drift", description="where each run's reports (JSON, JUnit XML, Markdown) are kept")
    keep_days: int = Field(30, description="reports older than this many days are removed (before each run)")
    converge: bool = Field(False, description="re-run the deploy on drifted hosts after reporting (off: report only)")

    _paths = field_validator("checkout", "report_dir")(check_own_path)

    @field_validator("inventory")
    @classmethod
    def _inventory(cls, path: str) -> str:
        if not local_path(path).is_file() or not re.fullmatch(r"[A-Za-z0-9._-]+\.py", Path(path).name):
            raise ValueError(f"'{path}' is not an inventory file on this machine named of letters, digits, '.', '_', '-' and ending in .py")
        return path

    _on_calendar = field_validator("on_calendar")(check_calendar)

    @field_validator("keep_days")
    @classmethod
    def _days(cls, days: int) -> int:
        if days < 1:
            raise ValueError("must be at least 1")
        return days


class Apt(Model):
    """How package steps ride through a busy or broken package manager."""

    lock_timeout: int = Field(
        600,
        description="seconds a package step waits for the dpkg lock (unattended-upgrades and cloud-init hold it for "
        "minutes after a fresh server boots; so does a deploy cut off a moment ago) before it fails, naming the holder",
    )
    retries: int = Field(3, description="times `apt-get update` and downloads are tried again while a package source is unreachable (5, 10, 15 s apart)")

    @field_validator("lock_timeout")
    @classmethod
    def _timeout(cls, seconds: int) -> int:
        if not 0 <= seconds <= 86400:
            raise ValueError("must be 0-86400 seconds")
        return seconds

    @field_validator("retries")
    @classmethod
    def _retries(cls, retries: int) -> int:
        if not 0 <= retries <= 10:
            raise ValueError("must be 0-10")
        return retries


class LabHost(Model):
    """Everything one lab server's data can say."""

    admins: list[Admin] = Field(default_factory=list, description="lab sysadmins: exactly these accounts are in the root-equivalent 'docker' group")
    users: list[HubUser] = Field(default_factory=list, description="lab members; a 'jupyter-*' account no longer listed is locked, never deleted")
    apt: Apt = Field(default_factory=Apt, description="how package steps wait for the dpkg lock and retry unreachable sources")
    docker: DockerEngine = Field(default_factory=DockerEngine, description="Docker Engine source and daemon.json")
    shares: list[Share] = Field(default_factory=list, description="CIFS shares in /etc/fstab, mounted; a share removed from data is unmounted and its files removed")
    mount_shares: bool = Field(
        True, description="mount the shares now (and remount on change); False on hosts whose kernel has no CIFS (container test hosts): fstab and credentials are still written"
    )
    hub: Hub = Field(default_factory=Hub, description="the JupyterHub + registry stack")
    drift: DriftSchedule = Field(default_factory=DriftSchedule, description="the nightly drift check, when this host is the control host")
    backup: Backup = Field(default_factory=Backup, description="scheduled restic backups of the homes and the hub's state, and where a restore reads from")
    restore: str | None = Field(
        None,
        description="restore the lab from backup.repository before the hub starts: 'latest' or a snapshot ID; once per host "
        "(it is recorded in /var/lib/labhub/restored), and only onto a host without lab data unless restore_force. "
        "One-off: pyinfra INVENTORY deploy.py --data restore=latest",
    )
    restore_force: bool = Field(False, description="restore even onto a host that holds lab data (it is overwritten: homes, hub database, secrets)")
    image_archives: list[str] = Field(
        default_factory=list,
        description="`docker save` archives on this machine (absolute, or relative to the repository), uploaded and loaded "
        "before anything is built or pulled: for sites that cannot reach an image registry",
    )
    extra_ca_certificates: list[str] = Field(
        default_factory=list,
        description="PEM CA certificates on this machine (e.g. of a TLS-inspecting proxy), trusted by the host and inside image builds",
    )

    @field_validator("image_archives")
    @classmethod
    def _archives(cls, paths: list[str]) -> list[str]:
        for path in paths:
            if not local_path(path).is_file():
                raise ValueError(f"'{path}' is not a file on this machine")
            try:
                if not archive_images(*file_identity(path)):
                    raise ValueError("names no image")
            except (tarfile.TarError, ValueError, KeyError, json.JSONDecodeError) as error:
                raise ValueError(f"'{path}' is not a `docker save` archive ({error})") from None
        return paths

    @field_validator("extra_ca_certificates")
    @classmethod
    def _certificates(cls, paths: list[str]) -> list[str]:
        for path in paths:
            if not is_pem_certificate(path):
                raise ValueError(f"'{path}' is not a PEM certificate file on this machine")
        if len({local_path(p).stem for p in paths}) != len(paths):
            raise ValueError("certificate files need distinct names")
        return paths

    @field_validator("admins")
    @classmethod
    def _unique_admins(cls, admins: list[Admin]) -> list[Admin]:
        _check_unique("admins", [a.name for a in admins], [a.uid for a in admins])
        return admins

    @field_validator("users")
    @classmethod
    def _unique_users(cls, users: list[HubUser]) -> list[HubUser]:
        _check_unique("users", [u.name for u in users], [u.uid for u in users])
        return users

    @field_validator("shares")
    @classmethod
    def _unique_shares(cls, shares: list[Share]) -> list[Share]:
        _check_unique("shares", [s.name for s in shares], [])
        mount_points = sorted((s.mount_point, i) for i, s in enumerate(shares))
        for (outer, i), (inner, j) in zip(mount_points, mount_points[1:]):
            if inner == outer or inner.startswith(outer + "/"):
                raise EntryError(f"shares[{j}]", f"mount point {inner} is {'the same as' if inner == outer else 'inside'} shares[{i}]'s {outer}: mount points must be distinct and not nested")
        return shares

    @model_validator(mode="after")
    def _share_owners_are_known(self) -> LabHost:
        accounts = {"root"} | {a.name for a in self.admins} | {u.account for u in self.users}
        groups = {"root", "users"} | {a.name for a in self.admins} | {u.group for u in self.users}
        for index, share in enumerate(self.shares):
            if isinstance(share.uid, str) and share.uid not in accounts:
                raise ValueError(f"shares[{index}].uid: '{share.uid}' is not an account this host has (known: {_some(accounts)})")
            if isinstance(share.gid, str) and share.gid not in groups:
                raise ValueError(f"shares[{index}].gid: '{share.gid}' is not a group this host has (known: {_some(groups)})")
        return self

    @field_validator("restore", mode="before")
    @classmethod
    def _restore_from_cli(cls, spec: Any) -> Any:
        # `--data restore=12345678`: pyinfra reads an all-digit snapshot ID as a number.
        return f"{spec:08d}" if isinstance(spec, int) and not isinstance(spec, bool) else spec

    @field_validator("restore")
    @classmethod
    def _restore(cls, spec: str | None) -> str | None:
        if spec is not None and spec != "latest" and not RESTIC_SNAPSHOT_ID.fullmatch(spec):
            raise ValueError("must be 'latest' or a restic snapshot ID (8 to 64 hexadecimal digits, as `restic snapshots` shows)")
        return spec

    @model_validator(mode="after")
    def _backup_has_where_and_how(self) -> LabHost:
        if not (self.backup.enabled or self.restore):
            return self
        why = "backup.enabled" if self.backup.enabled else f"restore = {self.restore!r}"
        if self.backup.repository is None:
            raise ValueError(f"backup.repository: {why} needs a repository, e.g. '/mnt/backup/labhub' or 's3:https://host/bucket/labhub'")
        if self.backup.credentials is None:
            raise ValueError(f"backup: {why} needs the repository password; set LABHUB_BACKUP_PASSWORD or [backup] password in the inventory's secrets file")
        if self.backup.is_s3 and (self.backup.credentials.aws_access_key_id is None or self.backup.credentials.aws_secret_access_key is None):
            raise ValueError("backup: an s3: repository needs LABHUB_BACKUP_AWS_ACCESS_KEY_ID and LABHUB_BACKUP_AWS_SECRET_ACCESS_KEY (or [backup] aws_access_key_id, aws_secret_access_key in the secrets file)")
        return self

    @model_validator(mode="after")
    def _uids_across_lists(self) -> LabHost:
        admin_uids = {a.uid: a.name for a in self.admins if a.uid is not None}
        for user in self.users:
            if user.uid in admin_uids:
                raise ValueError(f"UID {user.uid} is used by admin '{admin_uids[user.uid]}' and user '{user.name}'")
        return self


def _some(names: set[str], shown: int = 8) -> str:
    """A few of many names for an error message (a lab of 500 members is not listed whole)."""
    ordered = sorted(names)
    more = f" and {len(ordered) - shown} more" if len(ordered) > shown else ""
    return ", ".join(ordered[:shown]) + more


def _check_unique(field: str, names: list[str], uids: list[int | None]) -> None:
    seen: dict[str, int] = {}
    for index, name in enumerate(names):
        key = name.lower()
        if key in seen:
            raise EntryError(f"{field}[{index}]", f"duplicate name '{name}', also {field}[{seen[key]}] (names are compared lower-cased)")
        seen[key] = index
    seen_uids: dict[int, int] = {}
    for index, uid in enumerate(uids):
        if uid is None:
            continue
        if uid in seen_uids:
            raise EntryError(f"{field}[{index}]", f"duplicate UID {uid}, also {field}[{seen_uids[uid]}]")
        seen_uids[uid] = index
