"""A research lab's JupyterHub host: one line per concern, in the order they depend on each other.

    pyinfra inventories/lab.py deploy.py
"""

from tasks import certificates, docker, drift, hub, shares, users

certificates.extra()  # extra CA certificates (TLS-inspecting proxy), before anything downloads
docker.engine()  # Docker Engine + Compose v2, daemon.json, dockerd running
users.accounts()  # admins in `docker`; jupyter-<name> accounts; removed ones locked
shares.cifs()  # CIFS shares: credentials files, fstab lines, mounted
hub.stack()  # JupyterHub + registry (docker compose), notebook images in the registry
drift.nightly()  # on the control host: the nightly drift check (systemd timer)
