"""The sandbox's lab (inventories/sandbox.py): a small example of everything the deploy does.
The hub's images and this machine's CA certificates are added by `python -m tests.sandbox up`."""

admins = ["labadmin"]

users = ["alice", {"name": "bob", "uid": 2002}, {"name": "carol", "admin": True}]

# Docker's own repository is not reachable everywhere a sandbox runs; Debian's engine is.
docker = {"source": "distro"}

# Nightly backups into a directory of the sandbox itself (a real lab names a share or S3): the
# lab page (/services/lab/) then shows each member her snapshots. Its password is generated
# into inventories/sandbox.secrets.toml by `python -m tests.sandbox up`.
backup = {"enabled": True, "repository": "/srv/backup/labhub"}
