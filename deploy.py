"""A research lab's JupyterHub host: one line per concern, in the order they depend on each other.

    pyinfra inventories/lab.py deploy.py
"""

from labhub.ops import facts
from tasks import alerts, backup, certificates, disk, docker, drift, groups, hub, lab_page, shares, swarm, users

facts.read_ahead()  # what the last run read on this host, read again in one round trip (labhub/ops/facts.py)
certificates.extra()  # extra CA certificates (TLS-inspecting proxy), before anything downloads
swarm.departures()  # a swarm lab: nodes gone from data drained and removed by the hub, then out of the swarm
docker.engine()  # Docker Engine + Compose v2, daemon.json, dockerd running
disk.homes_disk()  # hub.homes_device: an empty disk formatted as XFS, the homes moved onto it, mounted at /home with quotas
users.accounts()  # admins in `docker`; jupyter-<name> accounts; removed ones locked
shares.cifs()  # CIFS shares: credentials files, fstab lines, mounted
users.homes()  # a swarm lab: members' homes on the homes share (mounted at /home just now)
groups.folders()  # research groups: host groups of exactly their members, their folders (setgid 2770, or on a share)
disk.quotas()  # hub.home_quota: each home and group folder its own project quota (XFS), enforced by the kernel
swarm.membership()  # a swarm lab: the hub manages the swarm and its overlay network, workers join; node labels
alerts.delivery()  # the nightly jobs' heartbeat URLs (root-only); on the control host, where its alerts go
backup.restic()  # restic, the backup repository's secrets (root-only), the repository opened
restore = backup.restored()  # with `restore`: homes, hub database, passwords, secrets from a snapshot, before the hub starts
lab_page.helper()  # the lab page's host side: a root-only socket whose helper answers disk use, snapshots, a member's restore
hub.stack()  # JupyterHub + registry (docker compose), notebook images in the registry
swarm.worker_images()  # a swarm lab's workers: the hub's notebook images, built under the hub's tags
backup.nightly(restore)  # the backup's systemd timer: restic snapshots, retention, repository check; a backup right after a restore
drift.nightly()  # on the control host: the nightly drift check (systemd timer)
