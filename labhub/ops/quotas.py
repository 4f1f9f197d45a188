"""Project quotas (XFS) on the members' homes and the groups' folders, and the homes' own disk:
one fact reads it all (the mount table, each directory's owner and project, the quota
reports, the dedicated disk) in one round trip; the operations act on what differs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pyinfra.api import FactBase, operation

from labhub.config.common import JUPYTER_PREFIX
from labhub.config.disk import HOMES
from labhub.ops import facts
from labhub.ops.shell import q, script

HOMES_LABEL = "labhub-homes"  # the XFS label of a disk labhub formatted for the homes
MOVE_DIR = "/run/labhub-homes-move"  # where that disk is mounted while the homes are copied onto it
FSTAB_MARKER = "# labhub: the disk of the members homes (hub.homes_device), managed by tasks/disk.py"
QUOTA_MOUNT_OPTIONS = ("prjquota", "pquota", "pqnoenforce")  # how /proc/mounts may spell XFS project quotas


class DiskState(FactBase):
    """The mount table; each member's home (/home/jupyter-*, by a glob: the command's length
    does not grow with the lab) and each folder given: its owner (UID:GID), project and flags
    (lsattr -p); the project quota report of every XFS mounted with project quotas; with a device:
    whether it is a block device, its real path, what blkid finds on it, how many partitions
    it has, and the real source of /home's mount. A fixed number of processes, however many
    homes: reading 500 takes well under a second (docs/benchmarks.md)."""

    def command(self, folders: Sequence[str] = (), device: str | None = None) -> str:
        listed = " ".join([f"{HOMES}/{JUPYTER_PREFIX}*", *(q(p) for p in folders)])
        lines = [
            "findmnt -rn -o TARGET,SOURCE,FSTYPE,OPTIONS | sed 's/^/M\t/'",
            f"stat -c 'A\t%n\t%u:%g' {listed} 2>/dev/null",
            f"lsattr -pd {listed} 2>/dev/null | sed 's/^ */P\t/'",
            "command -v xfs_quota >/dev/null && findmnt -rn -t xfs -o TARGET,OPTIONS | while read -r m o; do case \",$o,\" in "
            "*,prjquota,*|*,pquota,*|*,pqnoenforce,*) xfs_quota -x -c 'report -p -n -b -N' \"$m\" 2>/dev/null | "
            "awk -v m=\"$m\" 'NF >= 4 {sub(/^#/, \"\", $1); print \"Q\\t\" m \"\\t\" $1 \"\\t\" $2 \"\\t\" $4}';; esac; done",
        ]
        if device:
            d = q(device)
            lines += [
                f"printf 'D\\t%s\\t%s\\t%s\\t%s\\n' \"$(test -b {d} && echo block || echo missing)\" \"$(readlink -f {d})\" "
                f"\"$(blkid -p -o export {d} 2>/dev/null | grep -E '^(TYPE|PTTYPE|LABEL)=' | tr '\\n' ' ')\" \"$(lsblk -nro NAME {d} 2>/dev/null | wc -l)\"",
                f"printf 'H\\t%s\\t%s\\n' \"$(s=$(findmnt -rn -o SOURCE --mountpoint {HOMES} | head -n 1); [ -n \"$s\" ] && readlink -f \"$s\")\" "
                f"\"$(grep -c -x -F {q(FSTAB_MARKER)} /etc/fstab)\"",
            ]
        return "; ".join(lines) + "; true"

    @staticmethod
    def default():
        return {"mounts": {}, "directories": {}, "limits": {}, "device": None, "homes_source": "", "fstab": False}

    def process(self, output):
        state, mounts, owners, projects = self.default(), {}, {}, {}
        for line in output:
            kind, *fields = line.split("\t")
            if kind == "M" and len(mount := fields[0].split(" ")) == 4:
                mounts[mount[0]] = dict(zip(("target", "source", "fstype", "options"), mount))
            elif kind == "A" and len(fields) == 2:
                owners[fields[0]] = fields[1]
            elif kind == "P" and len(fields) == 1 and len(parts := fields[0].split(" ", 2)) == 3 and parts[0].isdigit():
                projects[parts[2]] = (int(parts[0]), "P" in parts[1])
            elif kind == "Q" and len(fields) == 4 and all(f.isdigit() for f in fields[1:]):
                state["limits"][(fields[0], int(fields[1]))] = {"used_kib": int(fields[2]), "limit_kib": int(fields[3])}
            elif kind == "D" and len(fields) == 4:
                found = dict(item.split("=", 1) for item in fields[2].split() if "=" in item)
                state["device"] = {"block": fields[0] == "block", "path": fields[1], "found": found,
                                   "partitions": max(int(fields[3] or 1) - 1, 0)}
            elif kind == "H" and len(fields) == 2:
                state["homes_source"], state["fstab"] = fields[0], fields[1] not in ("", "0")
        state["mounts"] = mounts
        for path, owner in owners.items():
            project, inherit = projects.get(path, (None, False))
            state["directories"][path] = {"owner": owner, "project": project, "inherit": inherit}
        return state


def filesystem_of(state: dict, path: str) -> dict:
    """The mount that holds a path: the longest mount point it is under."""
    under = [m for target, m in state["mounts"].items() if path == target or path.startswith(target.rstrip("/") + "/")]
    return max(under, key=lambda m: len(m["target"]), default={})


def has_project_quotas(filesystem: dict) -> bool:
    return filesystem.get("fstype") == "xfs" and any(option in filesystem["options"].split(",") for option in QUOTA_MOUNT_OPTIONS)


def homes_device_contents(device: dict) -> str | None:
    """What a device holds that labhub must not format over, or None: empty, or the homes disk labhub made."""
    found = device["found"]
    if found.get("TYPE") == "xfs" and found.get("LABEL") == HOMES_LABEL and not device["partitions"]:
        return None
    if "PTTYPE" in found or device["partitions"]:
        return f"a partition table ({found.get('PTTYPE', 'unknown type')}, {device['partitions']} partition(s))"
    if "TYPE" in found:
        label = f", label '{found['LABEL']}'" if "LABEL" in found else ""
        return f"a filesystem ({found['TYPE']}{label})"
    return None


@dataclass(frozen=True)
class QuotaDirectory:
    path: str
    limit_kib: int  # 0: no limit
    project_of: str  # "owner": the directory owner's UID; else a number added to its group's GID

    def project(self, owner: str) -> int:
        """Its project, given its owner as 'UID:GID'."""
        uid, gid = (int(n) for n in owner.split(":"))
        return uid if self.project_of == "owner" else int(self.project_of) + gid

    def found(self, state: dict) -> dict | None:
        """As the host has it (None: missing): its project and inheritance, the project it
        belongs in ("own_project") and that project's limit in KiB (0: none)."""
        now = state["directories"].get(self.path)
        if now is None:
            return None
        own = self.project(now["owner"])
        limit = state["limits"].get((filesystem_of(state, self.path).get("target"), own), {}).get("limit_kib", 0)
        return {**now, "own_project": own, "limit_kib": limit}

    def as_set(self, state: dict) -> bool:
        """Whether the directory exists in its own project, inherited, with its limit."""
        found = self.found(state)
        return found is not None and found["project"] == found["own_project"] and found["inherit"] and found["limit_kib"] == self.limit_kib


@operation()
def homes_on_device(device: str, state: dict):
    """Format an empty device as XFS (labelled HOMES_LABEL), copy /home onto it keeping every
    owner, mode, time, link and attribute (cp -a), then add its fstab line and mount it at
    /home with project quotas. The old copy stays underneath, hidden by the mount. A run cut
    off before the fstab line copies again from the old /home and goes on; one cut off after
    it mounts. Runs only while /home is not that device or its fstab line is missing."""
    line = f"{device} {HOMES} xfs defaults,prjquota 0 2"
    mounted = state["homes_source"] == state["device"]["path"]
    if mounted and state["fstab"]:
        return
    d = q(device)
    steps = []
    if not state["device"]["found"]:
        steps.append(f"[ -n \"$(blkid -p -o value -s TYPE {d})\" ] || mkfs.xfs -q -L {HOMES_LABEL} {d}")
    if not mounted:
        steps += [
            f"mkdir -p {MOVE_DIR}", f"mountpoint -q {MOVE_DIR} || mount -o prjquota {d} {MOVE_DIR}",
            f"cp -a {HOMES}/. {MOVE_DIR}/", "sync", f"umount {MOVE_DIR}", f"rmdir {MOVE_DIR}",
        ]
    steps += [
        f"grep -q -x -F {q(line)} /etc/fstab || printf '%s\\n%s\\n' {q(FSTAB_MARKER)} {q(line)} >> /etc/fstab",
        "systemctl daemon-reload",
    ]
    if not mounted:
        steps.append(f"mount {HOMES}")
    yield script(steps)


# One shell function, called once per directory: a command stays far below the kernel's
# limit on one argument (128 KiB) with thousands of homes (500 inlined steps passed it).
SET_PROJECT = (
    "set_project() { d=$1; if [ \"$3\" = owner ]; then id=$(stat -c %u \"$d\"); else id=$(($3 + $(stat -c %g \"$d\"))); fi; "
    "m=$(findmnt -rn -o TARGET -T \"$d\" | head -n 1); "
    "{ [ \"$(lsattr -pd \"$d\" | awk '{print $1}')\" = \"$id\" ] && lsattr -d \"$d\" | cut -d' ' -f1 | grep -q P; } "
    "|| xfs_quota -x -c \"project -s -p $d $id\" \"$m\" >/dev/null; "
    "xfs_quota -x -c \"limit -p bhard=${2}k $id\" \"$m\"; }"
)
PER_COMMAND = 1000  # directories per remote command


@operation()
def project_quotas(directories: Sequence[QuotaDirectory], state: dict):
    """Give each directory its own project (inherited by what is made inside it, and set on
    what is there already) and the project its hard block limit. A directory made earlier in
    this run is set up whatever the plan read, as it could not be read before."""
    calls = [f"set_project {q(d.path)} {d.limit_kib} {'owner' if d.project_of == 'owner' else int(d.project_of)}"
             for d in directories if not d.as_set(state)]
    for first in range(0, len(calls), PER_COMMAND):
        yield script([SET_PROJECT, *calls[first:first + PER_COMMAND]])


def read(folders: Sequence[str], device: str | None = None) -> dict:
    """The state, read once per run while nothing changed (it is not a secret: output shown)."""
    return facts.get(DiskState, folders=list(folders), device=device)
