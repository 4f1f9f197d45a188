"""What every section of the model shares: the base model, names and paths a host may take,
and the checks and error shapes the sections use."""

from __future__ import annotations

import posixpath
import re
from typing import Any

from pydantic import BaseModel, ConfigDict


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


# Mounting a share over these would hide the system.
SYSTEM_PATHS = frozenset(
    "/ /bin /boot /dev /etc /home /lib /lib32 /lib64 /opt /proc /root /run /sbin /srv /sys /tmp /usr /var".split()
)


# http(s) URLs of plain characters: no spaces, quotes, '$', '`' or backslashes, which a URL
# need not have and a shell line or a unit file could misread.
URL = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~%/+=:@,;!*()-]*)?(\?[A-Za-z0-9._~%/+=:@,;!*()&-]*)?")
URL_RULE = "an http:// or https:// URL of letters, digits and . _ ~ % / + = : @ , ; - (no spaces, quotes, '$' or '`')"


# A Docker image reference: [registry[:port]/]path[:tag][@sha256:digest], as Docker parses it.
IMAGE_REFERENCE = re.compile(
    r"[A-Za-z0-9]+(?:[.-][A-Za-z0-9]+)*(?::[0-9]+)?(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[0-9a-f]{64})?"
)

# Text shown to users (display names): printable, one line.
ONE_LINE = re.compile(r"[^\x00-\x1f\x7f]+")


# Groups that make an account root-equivalent or let it read the system's secrets: a lab
# member's account is never in one (validation refuses them as its primary group, the
# accounts operation removes members from them, the host checks look for them). `docker`
# holds exactly the lab's admins. `admin` is Ubuntu's old sudo group (%admin may sudo there).
PRIVILEGED_GROUPS = ("root", "sudo", "admin", "wheel", "docker", "adm", "shadow", "disk", "lxd")


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


def check_one_line_secret(secret):
    """A password-like secret (a pydantic SecretStr): one non-empty line; the error never shows it."""
    if not secret.get_secret_value() or re.search(r"[\x00-\x1f\x7f]", secret.get_secret_value()):
        raise ValueError("must be one non-empty line without control characters (not shown)")
    return secret


def check_image_reference(reference: str) -> str:
    if not IMAGE_REFERENCE.fullmatch(reference):
        raise ValueError("must be a Docker image reference such as 'quay.io/jupyterhub/jupyterhub:5.4.3'")
    return reference


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


def _check_not_nested(field: str, what: str, paths: list[str], rule: str) -> None:
    """Paths of a list's entries (mount points, folders) that are neither equal nor inside each other."""
    ordered = sorted((path, index) for index, path in enumerate(paths))
    for (outer, i), (inner, j) in zip(ordered, ordered[1:]):
        if inner == outer or inner.startswith(outer + "/"):
            raise EntryError(f"{field}[{j}]", f"{what} {inner} is {'the same as' if inner == outer else 'inside'} {field}[{i}]'s {outer}: {rule}")


# Node labels: Docker's label syntax, lower-case; 'labhub.' is ours.
LABEL_KEY = re.compile(r"[a-z0-9]([a-z0-9._-]{0,62}[a-z0-9])?")
LABEL_VALUE = re.compile(r"[A-Za-z0-9._-]{0,63}")


def check_labels(labels: dict[str, str]) -> dict[str, str]:
    """Node labels, or the labels a group's or image's servers need on their node."""
    for key, value in labels.items():
        if not LABEL_KEY.fullmatch(key) or key.startswith("labhub."):
            raise ValueError(f"label '{key}': a key is lower-case letters, digits, '.', '_' or '-' (not 'labhub.*'), e.g. 'gpu'")
        if not LABEL_VALUE.fullmatch(value):
            raise ValueError(f"label '{key}': a value is at most 63 letters, digits, '.', '_' or '-'")
    return labels
