"""Everything one lab server's data can say: the sections together, and the rules that span them."""

from __future__ import annotations

import json
import tarfile
from typing import Any

from pydantic import Field, field_validator, model_validator

from labhub.local import archive_images, file_identity, is_pem_certificate, local_path

from labhub.config.accounts import Admin, HubUser
from labhub.config.alerts import Alerts
from labhub.config.backup import RESTIC_SNAPSHOT_ID, Backup, RestoreFiles
from labhub.config.disk import check_quotas, quotas_on
from labhub.config.common import EntryError, Model, _check_not_nested, _check_unique, _some
from labhub.config.docker import Apt, DockerEngine
from labhub.config.drift import DriftSchedule
from labhub.config.groups import LabGroup
from labhub.config.hub import Hub
from labhub.config.shares import Share
from labhub.config.swarm import Swarm


class LabHost(Model):
    """Everything one lab server's data can say."""

    admins: list[Admin] = Field(default_factory=list, description="lab sysadmins: exactly these accounts are in the root-equivalent 'docker' group")
    users: list[HubUser] = Field(default_factory=list, description="lab members; a 'jupyter-*' account no longer listed is locked, never deleted")
    apt: Apt = Field(default_factory=Apt, description="how package steps wait for the dpkg lock and retry unreachable sources")
    docker: DockerEngine = Field(default_factory=DockerEngine, description="Docker Engine source and daemon.json")
    shares: list[Share] = Field(default_factory=list, description="CIFS shares in /etc/fstab, mounted; a share removed from data is unmounted and its files removed")
    groups: list[LabGroup] = Field(
        default_factory=list, description="research groups: a host group and a setgid folder each, mounted into members' servers only; "
        "extra images, limits and GPUs. A group removed from data keeps its host group and folder (its files stay)",
    )
    nvidia_gpus: bool = Field(False, description="this host has NVIDIA GPUs and the NVIDIA container toolkit (docs/gpus.md): groups and images may ask for GPUs")
    mount_shares: bool = Field(
        True, description="mount the shares now (and remount on change); False on hosts whose kernel has no CIFS (container test hosts): fstab and credentials are still written"
    )
    hub: Hub = Field(default_factory=Hub, description="the JupyterHub + registry stack")
    swarm: Swarm = Field(default_factory=Swarm, description="a lab of several servers: this host's role in its Docker Swarm (hub or worker), labels, reservations")
    drift: DriftSchedule = Field(default_factory=DriftSchedule, description="the nightly drift check, when this host is the control host")
    alerts: Alerts = Field(default_factory=Alerts, description="where the nightly drift check sends alerts (from the control host), and the nightly jobs' heartbeats")
    backup: Backup = Field(default_factory=Backup, description="scheduled restic backups of the homes and the hub's state, and where a restore reads from")
    restore: str | None = Field(
        None,
        description="restore the lab from backup.repository before the hub starts: 'latest' or a snapshot ID; once per host "
        "(it is recorded in /var/lib/labhub/restored), and only onto a host without lab data unless restore_force. "
        "One-off: pyinfra INVENTORY deploy.py --data restore=latest",
    )
    restore_force: bool = Field(False, description="restore even onto a host that holds lab data (it is overwritten: homes, hub database, secrets)")
    restore_files: RestoreFiles | None = Field(
        None, description="one-off, for restore-files.py: a member's file or folder from a snapshot into her ~/restored/<date>/; "
        "pyinfra INVENTORY restore-files.py --data member=alice --data path=notebooks/thesis.ipynb --data snapshot=2026-11-30"
    )
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
        _check_not_nested("shares", "mount point", [s.mount_point for s in shares], "mount points must be distinct and not nested")
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

    @model_validator(mode="before")
    @classmethod
    def _restore_files_from_cli(cls, data: Any) -> Any:
        # restore-files.py's `--data member=... --data path=... --data snapshot=...`
        if isinstance(data, dict) and {"member", "path"} & set(data):
            data = dict(data)
            data["restore_files"] = {key: data.pop(key) for key in ("member", "path", "snapshot") if key in data}
        return data

    @model_validator(mode="after")
    def _restore_files_of_a_member(self) -> LabHost:
        if self.restore_files is not None:
            members = {u.name for u in self.users}
            if self.restore_files.member not in members:
                raise ValueError(f"member: '{self.restore_files.member}' is not in users (known: {_some(members)})")
            if not self.backup.enabled:
                raise ValueError("member: restore-files.py brings files back from this host's backups, and backup.enabled is false here")
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

    @field_validator("groups")
    @classmethod
    def _unique_groups(cls, groups: list[LabGroup]) -> list[LabGroup]:
        _check_unique("groups", [g.name for g in groups], [g.gid for g in groups])
        _check_not_nested("groups", "folder", [g.path for g in groups], "each group needs its own folder")
        return groups

    @model_validator(mode="after")
    def _groups_fit_the_lab(self) -> LabHost:
        members = {u.name for u in self.users}
        image_names = {i.name: "hub.images" for i in self.hub.images}
        for index, group in enumerate(self.groups):
            where = f"groups[{index}] ({group.name})"
            for member in group.members:
                if member not in members:
                    raise EntryError(where, f"member '{member}' is not in users (known: {_some(members)}); list them there first")
            for share in self.shares:
                if group.path == share.mount_point or share.mount_point.startswith(group.path + "/"):
                    raise EntryError(where, f"folder {group.path} would hold share '{share.name}' ({share.mount_point}): use a host path, or a sub-path of the share such as {share.mount_point}/groups/{group.name}")
                if group.path.startswith(share.mount_point + "/") and share.read_only:
                    raise EntryError(where, f"folder {group.path} is on share '{share.name}', which is mounted read-only: a group folder must be writable")
            if group.path == self.hub.stack_dir or group.path.startswith(self.hub.stack_dir + "/"):
                raise EntryError(where, f"folder {group.path} is inside hub.stack_dir {self.hub.stack_dir}")
            for image in group.images:
                if image.name in image_names:
                    raise EntryError(where, f"image '{image.name}' is also in {image_names[image.name]}: image names are the registry's repositories and must be distinct")
                image_names[image.name] = f"groups[{index}]"
        return self

    @model_validator(mode="after")
    def _quotas_fit_the_lab(self) -> LabHost:
        check_quotas(self)
        return self

    def daemon_config(self, host_name: str) -> dict:
        """/etc/docker/daemon.json of this host (named as in the inventory)."""
        return self.docker.daemon_config(host_name if self.swarm.role else None)

    @property
    def lab_page_on(self) -> bool:
        """The lab page: as hub.lab_page says; by default when there are backups or quotas to show.
        Only where the hub runs (not on a swarm worker)."""
        wanted = self.hub.lab_page if self.hub.lab_page is not None else self.backup.enabled or quotas_on(self)
        return wanted and self.hub.enabled and self.swarm.role != "worker"

    def share_of(self, group: LabGroup):
        """The share a group's folder is a sub-path of, or None for a host path."""
        return next((s for s in self.shares if group.path.startswith(s.mount_point + "/")), None)

    @model_validator(mode="after")
    def _gpus_have_a_host(self) -> LabHost:
        if self.nvidia_gpus:
            return self
        asking = [f"groups[{i}] ({g.name})" for i, g in enumerate(self.groups) if g.gpus is not None]
        asking += [f"image '{image.name}'" for image in [*self.hub.images, *(i for g in self.groups for i in g.images)] if image.gpus is not None]
        if asking:
            raise ValueError(
                f"{asking[0]} asks for GPUs, but this host is not marked as having any: set nvidia_gpus: true on a host with "
                "NVIDIA GPUs and the NVIDIA container toolkit (docs/gpus.md), or remove gpus"
            )
        return self

    @model_validator(mode="after")
    def _uids_across_lists(self) -> LabHost:
        admin_uids = {a.uid: a.name for a in self.admins if a.uid is not None}
        for user in self.users:
            if user.uid in admin_uids:
                raise ValueError(f"UID {user.uid} is used by admin '{admin_uids[user.uid]}' and user '{user.name}'")
        return self

    @model_validator(mode="after")
    def _swarm_needs_one_storage(self) -> LabHost:
        """A swarm lab: the same accounts on every node (fixed UIDs and GIDs), the members'
        homes on one share every node mounts at /home, group folders on shares."""
        role, homes = self.swarm.role, [s.name for s in self.shares if s.homes]
        if role is None:
            if homes:
                raise ValueError(f"shares ({homes[0]}): homes: true is for a swarm lab (swarm.role hub or worker), where every node needs the same homes")
            return self
        where = f"swarm.role is {role!r}"
        for kind, entries in (("users", self.users), ("admins", self.admins)):
            loose = [entry.name for entry in entries if entry.uid is None]
            if loose:
                raise ValueError(f"{kind} ({loose[0]}): {where}, and a swarm lab needs a fixed uid for every account (the same files on every node); write {{'name': '{loose[0]}', 'uid': ...}}")
        for index, group in enumerate(self.groups):
            if group.gid is None:
                raise EntryError(f"groups[{index}] ({group.name})", f"{where}, and a swarm lab needs a fixed gid for every group; add gid: ...")
            if self.share_of(group) is None:
                raise EntryError(f"groups[{index}] ({group.name})", f"{where}: a group folder must be on a share every node mounts (a sub-path of a share), not the host path {group.path}")
        if len(homes) != 1:
            raise ValueError(f"shares: {where}, and a swarm lab keeps the members' homes on one share every node mounts: "
                             f"{'mark one share' if not homes else 'only one share may have'} homes: true (mount_point '/home')")
        if self.nvidia_gpus:
            raise ValueError(f"nvidia_gpus: {where}; GPUs in a swarm lab are not supported yet (docs/gpus.md): run GPU servers on a one-server lab")
        if role == "hub" and self.swarm.advertise_address is None:
            raise ValueError("swarm.advertise_address: the hub of a swarm lab needs the IP address the other nodes reach it at, e.g. '10.1.2.3'")
        if role == "hub" and not self.hub.enabled:
            raise ValueError("hub.enabled: the swarm's hub runs JupyterHub; set hub.enabled: true, or make this host a worker")
        return self

