"""A research lab's JupyterHub host: one line per concern, in the order they depend on each other.

    pyinfra inventories/lab.py deploy.py
"""

from tasks import docker, shares, users

docker.engine()  # Docker Engine + Compose v2, daemon.json, dockerd running
users.accounts()  # admins in `docker`; jupyter-<name> accounts; removed ones locked
shares.cifs()  # CIFS shares: credentials files, fstab lines, mounted
