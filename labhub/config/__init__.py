"""The one config model: everything a host's data can say, each field with its default and meaning.

Host data comes from the inventory and `group_data/` (pyinfra merges them); `labhub.inventory`
validates it into a `LabHost` before any connection is made, and every task reads only that.
`python -m labhub.reference` prints this model as the reference table in docs/configuration.md.

Every pattern here must match a whole value (`re.fullmatch`): a value with a trailing newline
or a shell metacharacter never reaches a host.

The model is split by section, one module each (accounts, docker, shares, hub, backup, drift,
alerts, and lab: the LabHost that holds them); everything is importable from here.
"""

from labhub.config.accounts import Admin, HubUser
from labhub.config.alerts import Alerts, AlertTarget
from labhub.config.backup import BACKUP_SECRETS_DIR, RESTIC_SNAPSHOT_ID, Backup, BackupCredentials
from labhub.config.common import (
    JUPYTER_PREFIX, MAX_HUB_NAME, PRIVILEGED_GROUPS, RESERVED_NAMES, EntryError, Model, _check_unique, is_plain_path,
)
from labhub.config.docker import DOCKER_DOWNLOAD_URL, DOCKER_RELEASE_KEY_FINGERPRINT, SUPPORTED_OS, Apt, DockerEngine
from labhub.config.drift import DriftSchedule
from labhub.config.hub import CA_TRUST_MARKER, HUB_BASE_IMAGE, NOTEBOOK_BASE_IMAGE, REGISTRY_IMAGE, Hub, NotebookImage
from labhub.config.lab import LabHost
from labhub.config.shares import CREDENTIALS_DIR, Share, ShareCredentials

__all__ = [
    "Admin", "Alerts", "AlertTarget", "Apt", "Backup", "BackupCredentials", "DockerEngine", "DriftSchedule", "EntryError", "Hub", "HubUser", "LabHost",
    "Model", "NotebookImage", "Share", "ShareCredentials", "BACKUP_SECRETS_DIR", "CA_TRUST_MARKER", "CREDENTIALS_DIR",
    "DOCKER_DOWNLOAD_URL", "DOCKER_RELEASE_KEY_FINGERPRINT", "HUB_BASE_IMAGE", "JUPYTER_PREFIX", "MAX_HUB_NAME",
    "NOTEBOOK_BASE_IMAGE", "PRIVILEGED_GROUPS", "REGISTRY_IMAGE", "RESERVED_NAMES", "RESTIC_SNAPSHOT_ID", "SUPPORTED_OS",
    "_check_unique", "is_plain_path",
]
