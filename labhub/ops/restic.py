"""restic backups: the repository opened (or initialised) with the lab's password, and the
lab restored from a snapshot onto a fresh host. The repository's password and keys are read
on the host from root-only files (RESTIC_PASSWORD_FILE and an env file), never passed on a
command line; restic never prints them."""

from __future__ import annotations

from collections.abc import Sequence

from pyinfra.api import FactBase, operation

from labhub.ops import facts
from labhub.ops.shell import changed, q, script

ENV_FILE = "/etc/labhub/backup/restic.env"
RESTORED_STAMP = "/var/lib/labhub/restored"


class StampText(FactBase):
    """The first line of a small stamp file ('' when there is none)."""

    def command(self, path: str) -> str:
        return f"head -n 1 {q(path)} 2>/dev/null; true"

    def process(self, output):
        return output[0].strip() if output else ""

    @staticmethod
    def default():
        return ""


@operation()
def repository(env_file: str, stamp: str, initialise: bool, check_when: Sequence = ()):
    """The repository opens with the password on the host, and is initialised when there is
    none yet (`initialise`; a restore never creates an empty one). Checked again only when
    the repository or its secrets changed (`check_when`), so a no-op run runs no restic."""
    wanted = facts.get(StampText, path=stamp)
    if wanted and not changed(check_when):
        return
    missing = "restic init >/dev/null" if initialise else (
        "echo \"there is no restic repository at $RESTIC_REPOSITORY: nothing to restore from\" >&2; exit 1"
    )
    yield script(
        [
            f"rm -f {q(stamp)}",  # a failed check leaves no stamp: the next run checks again
            f"set -a; . {q(env_file)}; set +a",
            "rc=0; out=$(restic cat config 2>&1 >/dev/null) || rc=$?",
            # restic >= 0.17 exits 10 (no repository) or 12 (wrong password); older ones say it in words.
            "if [ $rc = 12 ] || printf '%s' \"$out\" | grep -q 'wrong password'; then "
            "echo \"the password for the restic repository $RESTIC_REPOSITORY is wrong (restic: $out); "
            "to change a repository's password use restic key passwd, then the secret\" >&2; exit 1; "
            f"elif [ $rc = 10 ] || printf '%s' \"$out\" | grep -qi 'repository does not exist\\|Is there a repository'; then {missing}; "
            "elif [ $rc != 0 ]; then echo \"the restic repository $RESTIC_REPOSITORY cannot be opened: $out\" >&2; exit 1; fi",
            f"printf '%s\\n' \"$RESTIC_REPOSITORY\" > {q(stamp)}",
        ]
    )


class LabData(FactBase):
    """What was restored here (the stamp's 'SPEC SNAPSHOT'), and the lab data this host holds
    already: the hub's database, its generated secrets, or homes with more than the
    skeleton files. A fresh host has none."""

    def command(self, stack_dir: str, volume: str) -> str:
        return (
            f"printf 'R %s\\n' \"$(head -n 1 {RESTORED_STAMP} 2>/dev/null)\"; "
            f"[ -f {q(stack_dir)}/secrets.env ] && echo 'D the hub secrets in {stack_dir}/secrets.env'; "
            f"m=$(docker volume inspect --format '{{{{.Mountpoint}}}}' {q(volume)} 2>/dev/null) && [ -f \"$m/jupyterhub.sqlite\" ] "
            "&& echo 'D the hub database'; "
            "skel=\" $(ls -A /etc/skel 2>/dev/null | tr '\\n' ' ') \"; "
            "getent passwd | awk -F: '$1 ~ /^jupyter-/ {print $6}' | while read -r home; do "
            "for f in \"$home\"/* \"$home\"/.[!.]* \"$home\"/..?*; do [ -e \"$f\" ] || continue; "
            "case \"$skel\" in *\" ${f##*/} \"*) ;; *) echo \"D files in $home\"; break ;; esac; done; done | head -n 3; true"
        )

    def process(self, output):
        found = {"restored": "", "data": []}
        for line in output:
            kind, _, rest = line.partition(" ")
            if kind == "R":
                found["restored"] = rest.strip()
            elif kind == "D":
                found["data"].append(rest.strip())
        return found

    @staticmethod
    def default():
        return {"restored": "", "data": []}


@operation()
def restored(snapshot: str, backup_host: str, project: str, stack_dir: str, force: bool = False):
    """The lab restored from `snapshot` ('latest' of `backup_host`'s, or an ID), once: a host
    that records this restore is left alone. A host with lab data of its own is refused
    unless `force`, before anything is changed."""
    now = facts.get(LabData, stack_dir=stack_dir, volume=f"{project}_hub-data")
    if now["restored"].split(" ")[0] == snapshot:
        return
    if now["data"] and not force:
        # A failing step rather than an OperationError: pyinfra then prints it as it prints
        # every remote error, "[host] ...", under the step's name, and changes nothing.
        refusal = (
            f"refusing to restore {snapshot!r}: this host holds lab data already ({'; '.join(now['data'])}), which a restore "
            "would overwrite. Restore onto a fresh host, or set restore_force: True to overwrite it"
        )
        yield f"echo {q(refusal)} >&2; exit 1"
        return
    yield f"/usr/local/sbin/labhub-restore {q(snapshot)} {q(backup_host)} {q(project)} {q(stack_dir)}"


@operation(is_idempotent=False)
def member_files(script: str, backup_host: str, member: str, path: str, snapshot: str):
    """Run the host's labhub-restore-files: asked for once, it runs once (a second run of the
    same request is refused by the script, as the restored copy exists)."""
    yield f"{script} {q(backup_host)} {q(member)} {q(path)} {q(snapshot)}"
