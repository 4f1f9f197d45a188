"""CIFS shares: mounted from their fstab lines, remounted when a line or a password
changed, unmounted (and their credentials removed) when no longer in data."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from pyinfra.api import FactBase, operation

from labhub.config import CREDENTIALS_DIR
from labhub.ops import facts
from labhub.ops.shell import changed, q, script


class CifsState(FactBase):
    """CIFS mounts (/proc/self/mounts), and per share in the credentials directory: whether
    its credentials file exists and the stamp of its last mount. Stamps hold digests of the
    credentials file, so the tasks read this fact with its output hidden."""

    def command(self, directory: str) -> str:
        return (
            "awk '$3==\"cifs\" {print \"M\\t\" $2 \"\\t\" $1 \"\\t\" $4}' /proc/self/mounts; "
            "for f in DIR/*; do [ -f \"$f\" ] || continue; n=${f##*/}; case $n in "
            "*.labhub-new) ;; *.mounted) printf 'S\\t%s\\t%s\\n' \"${n%.mounted}\" \"$(cat \"$f\")\";; "
            "*) printf 'C\\t%s\\n' \"$n\";; esac; done; true"
        ).replace("DIR", q(directory))

    @staticmethod
    def default():
        return {"mounts": {}, "credentials": set(), "stamps": {}}

    def process(self, output):
        found = self.default()
        for line in output:
            kind, *fields = line.split("\t")
            if kind == "M" and len(fields) == 3:
                found["mounts"][fields[0]] = {"source": fields[1], "options": fields[2]}
            elif kind == "C" and fields:
                found["credentials"].add(fields[0])
            elif kind == "S" and len(fields) == 2:
                found["stamps"][fields[0]] = fields[1]
        return found


@dataclass(frozen=True)
class CifsMount:
    name: str
    source: str  # //server/share, as /proc/self/mounts shows it
    mount_point: str
    read_only: bool
    stamp: str = field(repr=False)  # "<sha256 of credentials> <sha256 of fstab line> <mount point>"
    line_digest: str = ""


@operation()
def mounts(mounts: Sequence[CifsMount], mount_now: bool = True, reload_when: Sequence = ()):
    """Mount each share (from its fstab line) unless it is mounted as its current fstab line
    and credentials say; remount it when either changed; unmount shares no longer in data and
    remove their credentials. A failed mount names the share, the server and mount.cifs's error."""
    now = facts.get(CifsState, output_hidden=True, directory=CREDENTIALS_DIR)
    steps = []
    if changed(reload_when):
        steps.append("systemctl daemon-reload")  # systemd's mount units are generated from fstab

    wanted = {m.name for m in mounts}
    for name in sorted((now["credentials"] | set(now["stamps"])) - wanted):
        stamp = now["stamps"].get(name, "").split()
        mount_point = stamp[2] if len(stamp) == 3 else None
        if mount_point in now["mounts"]:
            steps.append(f"umount {q(mount_point)} || umount --lazy {q(mount_point)}")
        credentials = f"{CREDENTIALS_DIR}/{name}"
        steps.append(f"rm -f {q(credentials)} {q(credentials + '.mounted')}")
        if mount_point:
            steps.append(f"rmdir {q(mount_point)} 2>/dev/null || true")

    for mount in mounts if mount_now else ():
        mounted = now["mounts"].get(mount.mount_point)
        as_wanted = (
            mounted is not None
            and mounted["source"] == mount.source
            and mounted["options"].startswith("ro," if mount.read_only else "rw,")
            and now["stamps"].get(mount.name) == mount.stamp
        )
        if as_wanted:
            continue
        where = q(mount.mount_point)
        credentials = f"{CREDENTIALS_DIR}/{mount.name}"
        if mounted is not None:
            # A share in use (a user container has it) is detached lazily and mounted afresh.
            steps.append(f"umount {where} 2>/dev/null || umount --lazy {where}")
        steps.append(
            f"if out=$(mount {where} 2>&1); then "
            f"printf '%s {mount.line_digest} %s\\n' \"$(sha256sum < {q(credentials)} | cut -d' ' -f1)\" {where} > {q(credentials + '.mounted')}; chmod 600 {q(credentials + '.mounted')}; "
            f"else echo \"share '{mount.name}' ({mount.source} on {mount.mount_point}): mount failed: $out\" >&2; failed=1; fi"
        )
    if steps:
        yield script(["umask 077", "failed=0", *steps, "exit $failed"])
