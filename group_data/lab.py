"""Data for every host of inventories/lab.py (pyinfra names the group after the file).

Each key is a field of labhub/config.py; docs/configuration.md lists all of them with their
defaults. Validation runs before pyinfra connects: a typo stops the run with a clear error.
"""

# Lab sysadmins: their accounts are created if missing, and exactly they are in the
# root-equivalent `docker` group.
admins = [
    {"name": "labadmin", "uid": 1500},
]

# Lab members: each gets the host account `jupyter-<name>` (home /home/jupyter-<name>,
# primary group `users`). Remove someone and their account is locked, never deleted.
users = [
    "alice",
    {"name": "bob", "uid": 2002},  # fixed UID, e.g. to match files on a file server
    {"name": "carol", "admin": True},  # JupyterHub admin
]

# Docker Engine from Docker's apt repository (the default); "distro" uses the
# distribution's docker.io, "mirror" an internal apt mirror of Docker's packages.
docker = {
    "source": "official",
    # "version": "5:27.3.1-1~debian.13~trixie",  # pin docker-ce and docker-ce-cli
    # "daemon_json": {"data-root": "/srv/docker"},  # merged over the defaults
}
