"""A research lab's JupyterHub host: one line per concern, in the order they depend on each other.

    pyinfra inventories/lab.py deploy.py
"""

from tasks import backup, certificates, docker, drift, groups, hub, shares, users

certificates.extra()  # extra CA certificates (TLS-inspecting proxy), before anything downloads
docker.engine()  # Docker Engine + Compose v2, daemon.json, dockerd running
users.accounts()  # admins in `docker`; jupyter-<name> accounts; removed ones locked
shares.cifs()  # CIFS shares: credentials files, fstab lines, mounted
groups.folders()  # research groups: host groups of exactly their members, their folders (setgid 2770, or on a share)
backup.restic()  # restic, the backup repository's secrets (root-only), the repository opened
backup.restored()  # with `restore`: homes, hub database, passwords, secrets from a snapshot, before the hub starts
hub.stack()  # JupyterHub + registry (docker compose), notebook images in the registry
backup.nightly()  # the backup's systemd timer: restic snapshots, retention, repository check
drift.nightly()  # on the control host: the nightly drift check (systemd timer)
