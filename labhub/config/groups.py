"""Research groups inside the lab: a host group of exactly their members, a shared setgid
folder mounted into their members' servers only, and their own images, limits and GPUs."""

from __future__ import annotations

from pydantic import Field, field_validator

from labhub.config.common import MAX_UNIX_NAME, UNIX_NAME, UNIX_NAME_RULE, Model, check_labels, check_own_path, check_uid
from labhub.config.disk import check_size
from labhub.config.hub import Gpus, NotebookImage, check_cpu, check_gpus, check_memory

# Host group of lab group <name>: a prefix keeps lab groups apart from the system's groups
# (a lab group called "video" or "render" must not grant access to the host's devices).
GROUP_PREFIX = "lab-"
MAX_GROUP_NAME = MAX_UNIX_NAME - len(GROUP_PREFIX)
GROUP_FOLDERS = "/srv/groups"  # where folders live unless data says otherwise
GROUP_FOLDER_MODE = 0o2770  # setgid: files made inside belong to the group; others see nothing


class LabGroup(Model):
    """A research group: its members share a folder, and may get extra images, larger limits and GPUs."""

    name: str = Field(description=f"the JupyterHub group; its host group is '{GROUP_PREFIX}<name>'")
    gid: int | None = Field(None, description="fixed GID of the host group (1000-60000), e.g. to match a file server; none: groupadd picks")
    members: list[str] = Field(default_factory=list, description="hub user names (from users); exactly these are in the host group")
    folder: str | None = Field(
        None, description=f"the group's shared folder: a host path (root:{GROUP_PREFIX}<name>, mode 2770), mounted read-write at the "
        f"same path into members' servers only; or a sub-path of a read-write share (the file server's permissions apply on the host; "
        f"other members' servers see it empty); none: {GROUP_FOLDERS}/<name>",
    )
    members_restore: bool = Field(
        False, description="members may bring back the folder's files from the nightly backup themselves, on the lab page (into "
        "<folder>/restored/<date>/); off: only the sysadmin restores them (a folder on a share is the file server's to back up)",
    )
    quota: str | None = Field(None, description="the most its folder on this host may hold, enforced by the kernel like hub.home_quota (K, M, G, T); none: no limit")
    images: list[NotebookImage] = Field(default_factory=list, description="extra images only members may start (the spawn form shows them)")
    mem_limit: str | None = Field(None, description="memory limit of members' servers instead of hub.mem_limit (a member of several groups gets the largest)")
    cpu_limit: float | None = Field(None, description="CPU limit of members' servers instead of hub.cpu_limit (the largest of a member's groups)")
    gpus: Gpus | None = Field(None, description="NVIDIA GPUs in each member's server: a number or 'all' (the host needs nvidia_gpus)")
    node_labels: dict[str, str] = Field(default_factory=dict, description="in a swarm lab: members' servers run only on nodes with these labels (swarm.labels)")

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if not UNIX_NAME.fullmatch(name) or len(name) > MAX_GROUP_NAME:
            raise ValueError(f"a group name must be {UNIX_NAME_RULE}, at most {MAX_GROUP_NAME} characters")
        return name

    _gid = field_validator("gid")(check_uid)
    _gpus = field_validator("gpus")(check_gpus)
    _node_labels = field_validator("node_labels")(check_labels)

    @field_validator("members")
    @classmethod
    def _members(cls, members: list[str]) -> list[str]:
        if len(set(members)) != len(members):
            raise ValueError("a member is listed twice")
        return members

    @field_validator("folder")
    @classmethod
    def _folder(cls, folder: str | None) -> str | None:
        if folder is not None:
            check_own_path(folder)
            if folder == "/home" or folder.startswith("/home/"):
                raise ValueError("must not be under /home (members' homes are mounted there); use e.g. /srv/groups/<name>")
        return folder

    _memory = field_validator("mem_limit")(check_memory)
    _quota = field_validator("quota")(check_size)
    _cpu = field_validator("cpu_limit")(check_cpu)

    @property
    def host_group(self) -> str:
        return GROUP_PREFIX + self.name

    @property
    def path(self) -> str:
        return self.folder or f"{GROUP_FOLDERS}/{self.name}"
