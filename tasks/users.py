"""Host accounts: admins (created if missing) are exactly the `docker` group; every lab member
has a `jupyter-<name>` account (home, primary group, shell, fixed UID where given), never in
`docker` or `sudo`; a `jupyter-*` account no longer in data is locked and keeps its home.
In a swarm lab the homes are on the homes share, which every node mounts at /home: the hub
makes them (once the share is mounted), the workers' accounts only point there."""

from pyinfra import host
from pyinfra.api import deploy

from labhub.inventory import host_config
from labhub.ops import accounts as host_accounts
from labhub.ops import files


@deploy("Users")
def accounts():
    config = host_config(host)
    host_accounts.lab_accounts(
        name="admins, jupyter-* accounts, docker group", admins=config.admins, users=config.users, create_homes=config.swarm.role != "worker"
    )


@deploy("Users' homes")
def homes():
    config = host_config(host)
    if config.swarm.role != "hub":
        return
    files.managed(
        name="admins' and members' homes on the homes share",
        directories=[
            *[files.ManagedDirectory(f"/home/{a.name}", mode=0o755, owner=a.name, group=a.name) for a in config.admins],
            *[files.ManagedDirectory(f"/home/{u.account}", mode=0o700, owner=u.account, group=u.group) for u in config.users],
        ],
    )
