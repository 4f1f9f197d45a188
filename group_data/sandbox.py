"""The sandbox's lab (inventories/sandbox.py): a small example of everything the deploy does.
The hub's images and this machine's CA certificates are added by `python -m tests.sandbox up`."""

admins = ["labadmin"]

users = ["alice", {"name": "bob", "uid": 2002}, {"name": "carol", "admin": True}]

# Docker's own repository is not reachable everywhere a sandbox runs; Debian's engine is.
docker = {"source": "distro"}
