"""Host accounts: admins (created if missing) are exactly the `docker` group; every lab member
has a `jupyter-<name>` account (home, primary group, shell, fixed UID where given), never in
`docker` or `sudo`; a `jupyter-*` account no longer in data is locked and keeps its home."""

from pyinfra import host
from pyinfra.api import deploy

from labhub.inventory import host_config
from labhub.ops import accounts as host_accounts


@deploy("Users")
def accounts():
    config = host_config(host)
    host_accounts.lab_accounts(name="admins, jupyter-* accounts, docker group", admins=config.admins, users=config.users)
