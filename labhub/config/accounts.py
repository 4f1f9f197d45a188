"""Lab sysadmins and members: their host accounts."""

from __future__ import annotations


from pydantic import Field, field_validator, model_validator

from labhub.config.disk import check_size
from labhub.config.common import (
    JUPYTER_PREFIX, MAX_HUB_NAME, MAX_UNIX_NAME, PRIVILEGED_GROUPS, UID_MAX, UID_MIN, UNIX_NAME, UNIX_NAME_RULE, Model,
    check_uid, check_unix_name, expand_name_shorthand, is_plain_path,
)


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
    home_quota: str | None = Field(None, description="the most her home may hold, instead of hub.home_quota (K, M, G, T)")

    _shorthand = model_validator(mode="before")(expand_name_shorthand)

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        return check_unix_name(name, MAX_HUB_NAME, "a hub user name")

    _uid = field_validator("uid")(check_uid)
    _home_quota = field_validator("home_quota")(check_size)

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
