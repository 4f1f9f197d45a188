"""CIFS shares of the institute's file server."""

from __future__ import annotations

import re

from pydantic import Field, SecretStr, field_validator, model_validator

from labhub.config.common import UNIX_NAME, UNIX_NAME_RULE, Model, check_own_path


# CIFS shares: credentials live here, one root-only file per share, never in /etc/fstab.
CREDENTIALS_DIR = "/etc/labhub/credentials"
HOMES = "/home"  # where the members' homes are (/home/jupyter-<name>), and the homes share's mount point
# SMB dialects worth offering (mount.cifs `vers=`); SMB1 ("1.0") is refused: insecure.
SMB_VERSIONS = ("3.1.1", "3.02", "3.0", "2.1", "default")


# mount.cifs options the model sets from its own fields (or that would carry a secret).
SHARE_OPTIONS_FROM_FIELDS = frozenset(
    "user username pass password password2 credentials cred uid gid file_mode dir_mode vers domain dom workgroup ro rw".split()
)
MOUNT_OPTION = re.compile(r"[a-z_][a-z0-9_.-]*(=[^,\s]+)?")
OCTAL_MODE = re.compile(r"[0-7]{3,4}")


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
    homes: bool = Field(
        False, description="this share holds the members' homes and is mounted at /home (a swarm lab: every node sees the same homes); "
        "each server mounts only its own home from it. The file server must keep owners (SMB3 POSIX extensions: options ['posix'])",
    )
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

    @field_validator("mount_point")
    @classmethod
    def _mount_point(cls, path: str) -> str:
        return path if path == HOMES else check_own_path(path)  # /home: only for the homes share (checked below)

    @model_validator(mode="after")
    def _homes_at_home(self) -> Share:
        if self.homes and self.mount_point != HOMES:
            raise ValueError(f"a share with homes: true is mounted at {HOMES}, where the members' homes are; write mount_point: '{HOMES}'")
        if not self.homes and self.mount_point == HOMES:
            raise ValueError(f"mount_point {HOMES} is a system directory: mounting a share there would hide the system's homes; only the homes share of a swarm lab goes there (homes: true); else use e.g. /mnt/<name>")
        if self.homes and self.read_only:
            raise ValueError("the homes share must be read-write")
        return self

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
