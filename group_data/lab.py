"""Data for every host of inventories/lab.py (pyinfra names the group after the file).

Each key is a field of the model in labhub/config/; docs/configuration.md lists all of them with their
defaults. Validation runs before pyinfra connects: a typo stops the run with a clear error.
"""

# Lab sysadmins: their accounts are created if missing, and exactly they are in the
# root-equivalent `docker` group.
admins = [
    {"name": "labadmin", "uid": 1500},
]

# Lab members: each gets the host account `jupyter-<name>` (home /home/jupyter-<name>,
# primary group `users`) and logs in to the hub as <name>. Remove someone and their account
# is locked, never deleted.
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

# The institute's file server. Passwords: LABHUB_SHARE_<NAME>_USERNAME/_PASSWORD or
# inventories/lab.secrets.toml (see README). Mounted on the host and in users' servers.
shares = [
    {"name": "data", "server": "files.institute.example.org", "share": "data",
     "mount_point": "/mnt/data", "read_only": True},
    {"name": "analysis", "server": "files.institute.example.org", "share": "analysis",
     "mount_point": "/mnt/analysis", "uid": "root", "gid": "users", "file_mode": "0664", "dir_mode": "0775"},
]

# The hub: its defaults (pinned official images, one notebook image built from
# files/images/notebook, 4G / 2 CPUs per user, idle servers stopped after an hour) suit most
# labs. More images: add a directory with a Dockerfile under files/images/ and list it here;
# its Dockerfile needs the line "# labhub: trust the extra CA certificates here" after USER root.
hub = {
    "images": [{"name": "notebook", "display_name": "Python (minimal)"}],
    # "public_url": "https://jupyter.physics.example.org/",  # behind your TLS reverse proxy
}

# A TLS-inspecting proxy at your institute? Its CA, trusted on the server and in image builds:
# extra_ca_certificates = ["files/ca/institute-proxy.crt"]

# Nightly backups of the homes and the hub's state (restic; README: Backup and restore). The
# repository password: LABHUB_BACKUP_PASSWORD or [backup] in inventories/lab.secrets.toml.
# backup = {"enabled": True, "repository": "/mnt/backup/labhub"}
