"""Batched operations: each reads one fact (one SSH round trip) however many users, files or
packages it manages, and yields commands only for what differs, so a no-op run stays flat.

Measured on a Debian 13 test host: every fact costs ~45 ms; `server.user` in a loop costs
~0.7 s per user and `files.put` three facts per file, which is why these exist. Every
operation is called with `name=` by the tasks, so pyinfra never labels one with its
arguments, and no file content or secret is ever part of a command line.
"""

from __future__ import annotations

import hashlib
import shlex
from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from io import BytesIO

from pyinfra import host, logger, state
from pyinfra.api import FactBase, FileUploadCommand, OperationError, StringCommand, operation
from pyinfra.facts.apt import noninteractive_apt
from pyinfra.facts.deb import DebPackages

from labhub.config import CREDENTIALS_DIR, JUPYTER_PREFIX, Admin, HubUser

LOCKED_SHELL = "/usr/sbin/nologin"
# Groups that make an account root-equivalent; jupyter-* accounts are never in them.
PRIVILEGED_GROUPS = ("docker", "sudo", "admin", "wheel")


def q(value: object) -> str:
    return shlex.quote(str(value))


def changed(ops: Iterable) -> bool:
    """Whether any of these earlier operations changed (or, before execution, will change).

    Unlike `_if=op.did_change`, which pyinfra ignores while planning, this keeps `--dry`
    honest: a restart shows in the plan only when its trigger does.
    """
    return any(op.did_change() if op.is_complete() else op.will_change for op in ops)


def script(lines: Sequence[str]) -> StringCommand:
    """One remote command for many steps: one round trip, stops at the first failure."""
    return StringCommand("set -e\n" + "\n".join(lines))


_hidden_fact_output = 0


@contextmanager
def fact_output_hidden(hide: bool = True):
    """Keep a fact's output out of `-vvv` (digests of files that hold secrets)."""
    global _hidden_fact_output
    if not hide:
        yield
        return
    if _hidden_fact_output == 0:
        fact_output_hidden.saved = state.print_fact_output
        state.print_fact_output = False
    _hidden_fact_output += 1
    try:
        yield
    finally:
        _hidden_fact_output -= 1
        if _hidden_fact_output == 0:
            state.print_fact_output = fact_output_hidden.saved


# Facts ------------------------------------------------------------------------------------


class OsRelease(FactBase):
    """ID, VERSION_ID and codename from /etc/os-release, and the dpkg architecture."""

    def command(self) -> str:
        return (
            ". /etc/os-release; printf '%s\\n' \"$ID\" \"$VERSION_ID\" \"${VERSION_CODENAME:-}\"; "
            "dpkg --print-architecture 2>/dev/null || uname -m"
        )

    def process(self, output):
        keys = ("id", "version_id", "codename", "arch")
        return dict(zip(keys, [line.strip() for line in output] + [""] * 4))


class PathStates(FactBase):
    """type, mode, owner, group (and sha256 for regular files) of each existing path, and the
    files found in each of the `listed` directories (under the key "%files")."""

    @staticmethod
    def default():
        return {"%files": set()}

    def command(self, paths: tuple[str, ...], listed: tuple[str, ...] = ()) -> str:
        quoted = " ".join(q(p) for p in paths)
        listing = "".join(f"for f in {q(d)}/*; do [ -f \"$f\" ] && printf 'F\\t%s\\n' \"$f\"; done; " for d in listed)
        return (
            f"for p in {quoted}; do "
            "stat -c 'S\t%n\t%F\t%a\t%U\t%G' -- \"$p\" 2>/dev/null && [ -f \"$p\" ] "
            "&& sha256sum -- \"$p\" | sed 's/^/H\t/'; done; " + listing + "true"
        )

    def process(self, output):
        states: dict = {"%files": set()}
        for line in output:
            kind, _, rest = line.partition("\t")
            if kind == "F":
                states["%files"].add(rest)
            elif kind == "S":
                path, file_type, mode, owner, group = rest.split("\t")
                file_type = "regular file" if file_type == "regular empty file" else file_type  # stat's words
                states[path] = {"type": file_type, "mode": int(mode, 8), "owner": owner, "group": group}
            elif kind == "H":
                digest, _, path = rest.partition("  ")
                states[path]["sha256"] = digest
        return states


class ServiceState(FactBase):
    def command(self, unit: str) -> str:
        return (
            f"printf '%s\\n' \"$(systemctl is-enabled {q(unit)} 2>/dev/null)\" "
            f"\"$(systemctl is-active {q(unit)} 2>/dev/null)\""
        )

    def process(self, output):
        lines = [line.strip() for line in output] + ["", ""]
        return {"enabled": lines[0], "active": lines[1]}


# Primary-key fingerprints of an OpenPGP key file, read without touching any keyring.
_FINGERPRINTS = (
    "GNUPGHOME=\"$tmp\" gpg --batch --show-keys --with-colons {file} 2>/dev/null "
    "| awk -F: '$1==\"pub\"{{p=1;next}} $1==\"fpr\"&&p{{print $10;p=0}}' | sort"
)


class KeyFingerprints(FactBase):
    """Primary-key fingerprints in a keyring file; empty when the file is absent."""

    default = list

    def command(self, path: str) -> str:
        return (
            f"if [ -f {q(path)} ]; then tmp=$(mktemp -d); "
            + _FINGERPRINTS.format(file=q(path))
            + "; rm -rf \"$tmp\"; fi; true"
        )

    def process(self, output):
        return [line.strip() for line in output if line.strip()]


class FileLines(FactBase):
    """The lines of a text file; None when there is no such file."""

    def command(self, path: str) -> str:
        return f"if [ -f {q(path)} ]; then echo '%file'; cat {q(path)}; fi"

    def process(self, output):
        return output[1:] if output and output[0] == "%file" else None


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


class Accounts(FactBase):
    """passwd and group databases, the lock state and expiry of every account (never a
    password hash), and which home directories exist."""

    def command(self) -> str:
        return (
            "getent passwd; echo '%group'; getent group; echo '%shadow'; "
            "getent shadow | awk -F: '{print $1 \":\" substr($2,1,1) \":\" $8}'; echo '%homes'; "
            "getent passwd | cut -d: -f6 | while read -r h; do [ -d \"$h\" ] && echo \"$h\"; done; true"
        )

    def process(self, output):
        section = "passwd"
        users: dict[str, dict] = {}
        groups: dict[str, dict] = {}
        homes: set[str] = set()
        for line in output:
            if line.startswith("%"):
                section = line[1:]
                continue
            fields = line.split(":")
            if section == "passwd" and len(fields) >= 7:
                users[fields[0]] = {"uid": int(fields[2]), "gid": int(fields[3]), "home": fields[5], "shell": fields[6]}
            elif section == "group" and len(fields) >= 4:
                groups[fields[0]] = {"gid": int(fields[2]), "members": [m for m in fields[3].split(",") if m]}
            elif section == "shadow" and len(fields) == 3 and fields[0] in users:
                users[fields[0]].update(password_locked=fields[1] == "!", expire=fields[2])
            elif section == "homes":
                homes.add(line)
        return {"users": users, "groups": groups, "homes": homes}


# Operations -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ManagedFile:
    path: str
    content: str | bytes = field(repr=False)  # never in a log line
    mode: int = 0o644
    owner: str = "root"
    group: str = "root"
    secret: bool = False  # content and digest never printed; lives in a 0700 directory
    validate: str | None = None  # run on the new file before it replaces the old; {} = its path

    @property
    def data(self) -> bytes:
        return self.content.encode() if isinstance(self.content, str) else self.content


@dataclass(frozen=True)
class ManagedDirectory:
    path: str
    mode: int = 0o755
    owner: str = "root"
    group: str = "root"
    exists_only: bool = False  # e.g. a mount point: what is mounted there owns its mode


def _ownership_fixes(path: str, current: dict, want) -> list[str]:
    fixes = []
    if (current["owner"], current["group"]) != (want.owner, want.group):
        fixes.append(f"chown {q(want.owner)}:{q(want.group)} {q(path)}")
    if current["mode"] != want.mode:
        fixes.append(f"chmod {want.mode:o} {q(path)}")
    return fixes


@operation()
def files(
    files: Sequence[ManagedFile] = (),
    directories: Sequence[ManagedDirectory] = (),
    absent: Sequence[str] = (),
    purge: Sequence[str] = (),
):
    """Directories, files (content, owner, mode) and absent paths, from one fact; in each
    `purge` directory, files not in `files` are removed (e.g. a CA dropped from data).

    A changed file is uploaded next to its target, given its owner and mode, validated, and
    renamed into place, so it is never seen half-written or with loose permissions.
    """
    paths = tuple(d.path for d in directories) + tuple(f.path for f in files) + tuple(absent)
    with fact_output_hidden(any(f.secret for f in files)):
        current = host.get_fact(PathStates, paths=paths, listed=tuple(purge))
    wanted_paths = {f.path for f in files}
    absent = [*absent, *sorted(p for p in current["%files"] if p not in wanted_paths and not p.endswith(".labhub-new"))]

    make_directories = []
    for directory in directories:
        now = current.get(directory.path)
        if now is None:
            make_directories.append(
                f"install -d -m {directory.mode:o} -o {q(directory.owner)} -g {q(directory.group)} {q(directory.path)}"
            )
        elif now["type"] != "directory":
            raise OperationError(f"{directory.path} exists but is a {now['type']}, not a directory")
        elif not directory.exists_only:
            make_directories += _ownership_fixes(directory.path, now, directory)
    if make_directories:
        yield script(make_directories)

    place_files = []
    for file in files:
        now = current.get(file.path)
        if now is not None and now["type"] != "regular file":
            raise OperationError(f"{file.path} exists but is a {now['type']}, not a regular file")
        if now is None or now.get("sha256") != hashlib.sha256(file.data).hexdigest():
            staged = f"{file.path}.labhub-new"
            yield FileUploadCommand(BytesIO(file.data), staged)
            place_files += [f"chown {q(file.owner)}:{q(file.group)} {q(staged)}", f"chmod {file.mode:o} {q(staged)}"]
            if file.validate:
                check = file.validate.format(q(staged))
                place_files.append(
                    f"if ! out=$({check} 2>&1); then rm -f {q(staged)}; "
                    f"echo \"{file.path} was not changed: the new version fails '{file.validate.format('FILE')}': $out\" >&2; exit 1; fi"
                )
            place_files.append(f"mv -f {q(staged)} {q(file.path)}")
        else:
            place_files += _ownership_fixes(file.path, now, file)
    place_files += [f"rm -f {q(path)}" for path in absent if path in current]
    if place_files:
        yield script(place_files)


@operation()
def block_in_file(path: str, lines: Sequence[str], marker: str):
    """Our lines between '# BEGIN <marker>' and '# END <marker>' in a file that others edit
    too (/etc/fstab): replaced in place, duplicates dropped, the rest kept as it is; an empty
    `lines` removes the block. The file is replaced atomically, keeping its owner and mode.
    (pyinfra's files.block puts the marker into an awk regex unescaped, and is in beta.)"""
    begin, end = f"# BEGIN {marker}", f"# END {marker}"
    current = host.get_fact(FileLines, path=path)
    block = [begin, *lines, end] if lines else []
    wanted, inside, placed = [], False, False
    for line in current or []:
        if line == begin:
            inside = True
            if not placed:
                wanted += block
                placed = True
        elif inside:
            inside = line != end
        else:
            wanted.append(line)
    if not placed:
        wanted += block
    if current is not None and wanted == current:
        return
    if current is None and not block:
        return
    staged = f"{path}.labhub-new"
    yield FileUploadCommand(BytesIO(("\n".join(wanted) + "\n").encode()), staged)
    keep = [f"chown --reference={q(path)} {q(staged)}", f"chmod --reference={q(path)} {q(staged)}"] if current is not None else [
        f"chown root:root {q(staged)}", f"chmod 644 {q(staged)}"
    ]
    yield script([*keep, f"mv -f {q(staged)} {q(path)}"])


@operation()
def packages(install: Sequence[str] = (), remove: Sequence[str] = (), refresh_when: Sequence = ()):
    """Install and remove apt packages from one `dpkg -l`; `apt-get update` runs only when
    something must be installed or a source in `refresh_when` changed."""
    installed = host.get_fact(DebPackages)

    def missing(spec: str) -> bool:
        name, _, version = spec.partition("=")
        return name not in installed or bool(version and version not in installed[name])

    to_remove = [name for name in remove if name in installed]
    to_install = [spec for spec in install if missing(spec)]
    if to_remove:
        yield noninteractive_apt("remove " + " ".join(to_remove))
    if to_install or changed(refresh_when):
        yield noninteractive_apt("update")
    if to_install:
        yield noninteractive_apt("install --allow-downgrades " + " ".join(to_install))


@operation()
def apt_key(url: str, fingerprint: str, keyring: str):
    """Fetch an apt signing key and install it as `keyring` only if its fingerprint is the
    pinned one; the keyring holds that one key and nothing else from the download."""
    if host.get_fact(KeyFingerprints, path=keyring) == [fingerprint]:
        return
    yield script(
        [
            "tmp=$(mktemp -d); trap 'rm -rf \"$tmp\"' EXIT",
            f"curl -fsSL --retry 3 -o \"$tmp/download\" {q(url)}",
            "got=$(" + _FINGERPRINTS.format(file='"$tmp/download"') + " | tr '\\n' ' ')",
            f"case \" $got\" in *\" {fingerprint} \"*) ;; *) echo \"refusing the key from {url}: "
            f"its fingerprint is ${{got:-unreadable}}, the pinned one is {fingerprint}; apt was not changed\" >&2; exit 1;; esac",
            "GNUPGHOME=\"$tmp\" gpg --batch --quiet --import \"$tmp/download\"",
            f"GNUPGHOME=\"$tmp\" gpg --batch --export {fingerprint} > \"$tmp/keyring\"",
            f"install -D -m 644 -o root -g root \"$tmp/keyring\" {q(keyring)}",
        ]
    )


@operation()
def service(unit: str, running: bool = True, enabled: bool = True, restart_when: Sequence = ()):
    """A systemd unit enabled and running; restarted only when a trigger operation changed."""
    now = host.get_fact(ServiceState, unit=unit)
    if enabled and now["enabled"] != "enabled":
        yield f"systemctl enable {q(unit)}"
    # "activating" (e.g. dockerd just after boot) is on its way to running: starting it
    # would change nothing, but a restart may still be due.
    started = now["active"] in ("active", "activating", "reloading")
    action = "restart" if started and changed(restart_when) else None if started else "start"
    if running and action:
        # A deliberate (re)start clears systemd's start rate limit, which a few converges in
        # a minute would otherwise hit; on failure the unit's status says why.
        yield script(
            [
                f"systemctl reset-failed {q(unit)} 2>/dev/null || true",
                f"if ! systemctl {action} {q(unit)}; then systemctl status --no-pager --lines 20 {q(unit)} >&2; exit 1; fi",
            ]
        )


@operation()
def accounts(admins: Sequence[Admin], users: Sequence[HubUser]):
    """Admin accounts, jupyter-* accounts and the docker group, from one read of the account
    databases. A jupyter-* account no longer in data is locked (password, expiry, shell),
    never deleted; its home stays."""
    facts = host.get_fact(Accounts)
    passwd, groups, homes = facts["users"], facts["groups"], facts["homes"]
    owner_of_uid = {entry["uid"]: name for name, entry in passwd.items()}
    group_of_gid = {entry["gid"]: name for name, entry in groups.items()}
    steps: list[str] = []

    def check_uid_free(account: str, uid: int | None) -> None:
        holder = owner_of_uid.get(uid)
        if uid is not None and holder not in (None, account):
            raise OperationError(f"cannot give {account} UID {uid}: the host's account '{holder}' has it")

    for group in sorted({u.group for u in users} | {"docker"}):
        if group not in groups:
            steps.append(f"groupadd {'--system ' if group == 'docker' else ''}{q(group)}")

    for admin in admins:
        check_uid_free(admin.name, admin.uid)
        now = passwd.get(admin.name)
        if now is None:
            uid = f"--uid {admin.uid} " if admin.uid else ""
            steps.append(f"useradd --create-home --shell /bin/bash {uid}{q(admin.name)}")
        elif admin.uid and now["uid"] != admin.uid:
            steps.append(f"usermod --uid {admin.uid} {q(admin.name)}")

    for user in users:
        account = user.account
        check_uid_free(account, user.uid)
        now = passwd.get(account)
        if now is None:
            uid = f"--uid {user.uid} " if user.uid else ""
            steps.append(
                f"useradd --create-home --home-dir /home/{account} --gid {q(user.group)} --shell {q(user.shell)} "
                f"{uid}--comment {q('JupyterHub user ' + user.name)} {account}"
            )
            continue
        if now["uid"] < 1000:
            raise OperationError(f"{account} exists as a system account (UID {now['uid']}); not touching it")
        changes = []
        if user.uid and now["uid"] != user.uid:
            changes.append(f"--uid {user.uid}")
        if group_of_gid.get(now["gid"]) != user.group:
            changes.append(f"--gid {q(user.group)}")
        if now["shell"] != user.shell:
            changes.append(f"--shell {q(user.shell)}")
        if now.get("expire"):
            changes.append("--expiredate ''")
        if not now.get("password_locked"):
            changes.append("--lock")  # hub users log in through the hub, never with a host password
        if changes:
            steps.append(f"usermod {' '.join(changes)} {account}")
        if now["home"] not in homes:
            steps.append(f"install -d -m 700 -o {account} -g {q(user.group)} {q(now['home'])}")

    wanted = {u.account for u in users}
    for account, now in sorted(passwd.items()):
        if account.startswith(JUPYTER_PREFIX) and account not in wanted and now["uid"] >= 1000:
            if not (now.get("password_locked") and now.get("expire") == "1" and now["shell"] == LOCKED_SHELL):
                steps.append(f"usermod --lock --expiredate 1 --shell {LOCKED_SHELL} {account}")

    for group in PRIVILEGED_GROUPS:
        for member in groups.get(group, {}).get("members", []):
            if member.startswith(JUPYTER_PREFIX) and group != "docker":
                steps.append(f"gpasswd --delete {q(member)} {group} >/dev/null")

    admin_names = sorted(a.name for a in admins)
    if sorted(groups.get("docker", {}).get("members", [])) != admin_names:
        steps.append(f"gpasswd --members {q(','.join(admin_names))} docker")

    if steps:
        yield script(steps)


@dataclass(frozen=True)
class CifsMount:
    name: str
    source: str  # //server/share, as /proc/self/mounts shows it
    mount_point: str
    read_only: bool
    stamp: str = field(repr=False)  # "<sha256 of credentials> <sha256 of fstab line> <mount point>"
    line_digest: str = ""


@operation()
def cifs_mounts(mounts: Sequence[CifsMount], mount_now: bool = True, reload_when: Sequence = ()):
    """Mount each share (from its fstab line) unless it is mounted as its current fstab line
    and credentials say; remount it when either changed; unmount shares no longer in data and
    remove their credentials. A failed mount names the share, the server and mount.cifs's error."""
    with fact_output_hidden():
        now = host.get_fact(CifsState, directory=CREDENTIALS_DIR)
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


@operation()
def run_when_changed(command: str, triggers: Sequence):
    """Run `command` only when one of the trigger operations changed something."""
    if changed(triggers):
        yield command


# The hub stack ----------------------------------------------------------------------------

# Shell: the HTTP status code of a URL (000 when nothing answers within 5 s).
HTTP_STATUS = "curl -s -o /dev/null -m 5 -w '%{http_code}'"


class ImageIds(FactBase):
    """The image ID behind each of these names in the host's Docker engine (if it has it)."""

    default = dict

    def command(self, refs: tuple[str, ...]) -> str:
        return (
            f"for ref in {' '.join(q(r) for r in refs)}; do "
            "id=$(docker image inspect --format '{{.Id}}' \"$ref\" 2>/dev/null) && echo \"$ref $id\"; done; true"
        )

    def process(self, output):
        return dict(line.split() for line in output if len(line.split()) == 2)


@dataclass(frozen=True)
class ImageArchive:
    path: str  # on the machine running pyinfra
    images: tuple[tuple[str, str], ...]  # (name, image ID) of each image it holds


@operation()
def load_image_archives(archives: Sequence[ImageArchive]):
    """Upload and `docker load` each archive whose images the host does not have under their
    names (compared by image ID); the archive is removed from the host once loaded."""
    present = host.get_fact(ImageIds, refs=tuple(ref for a in archives for ref, _ in a.images))
    for archive in archives:
        if all(present.get(ref) == image_id for ref, image_id in archive.images):
            continue
        staged = f"/var/tmp/labhub-{hashlib.sha256(archive.path.encode()).hexdigest()[:12]}.tar"
        yield FileUploadCommand(archive.path, staged)
        yield script([f"docker load --quiet --input {staged}", f"rm -f {staged}"])


class EnvKeys(FactBase):
    """The variable names (never the values) set in an env file."""

    default = set

    def command(self, path: str) -> str:
        return f"[ -f {q(path)} ] && sed -n 's/^\\([A-Za-z_][A-Za-z0-9_]*\\)=.*/\\1/p' {q(path)}; true"

    def process(self, output):
        return {line.strip() for line in output if line.strip()}


@operation()
def generated_secrets(path: str, names: Sequence[str]):
    """An env file (root, 0600) with a random 256-bit hex value for each name, generated on
    the host once and kept: no secret ever leaves the host or appears in a command line."""
    missing = [name for name in names if name not in host.get_fact(EnvKeys, path=path)]
    if missing:
        yield script(
            ["umask 077", f"touch {q(path)}", f"chmod 600 {q(path)}"]
            + [f"echo \"{name}=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n')\" >> {q(path)}" for name in missing]
        )


# What a running stack was brought up from: its files, and the IDs of the images they name.
# (`docker compose config --hash` does not match the running containers' hash for services
# that compose builds, so the stack keeps its own stamp, written after a successful `up`.)
STACK_STAMP = ".labhub-up"


def _stack_digest(files: Sequence[str], images: Sequence[str]) -> str:
    """Shell: the digest of the stack's files and images, computed on the host."""
    return (
        f"{{ cat {' '.join(q(f) for f in files)} 2>/dev/null; "
        f"docker image inspect --format '{{{{.Id}}}}' {' '.join(q(i) for i in images)} 2>/dev/null; }} | sha256sum | cut -d' ' -f1"
    )


class ComposeState(FactBase):
    """A compose stack: its digest now and at the last successful `up` (it covers the
    generated secrets, so it is a digest of 256-bit random values: printable), the state of
    each service's container, and the HTTP status of each health URL."""

    def command(self, directory: str, project: str, files: tuple[str, ...], images: tuple[str, ...], urls: tuple[str, ...]) -> str:
        checks = " ".join(q(url) for url in urls)
        return (
            f"cd {q(directory)} 2>/dev/null || exit 0; "
            f"printf 'D %s\\n' \"$({_stack_digest(files, images)})\"; "
            f"printf 'S %s\\n' \"$(cat {STACK_STAMP} 2>/dev/null)\"; "
            f"docker ps -a --filter label=com.docker.compose.project={q(project)} "
            "--format 'R {{.Label \"com.docker.compose.service\"}} {{.State}}'; "
            f"for url in {checks}; do printf 'H %s %s\\n' \"$url\" \"$({HTTP_STATUS} \"$url\")\"; done; true"
        )

    @staticmethod
    def default():
        return {"digest": None, "stamp": None, "running": {}, "health": {}}

    def process(self, output):
        found = self.default()
        for line in output:
            kind, *fields = line.split()
            if kind == "D" and fields:
                found["digest"] = fields[0]
            elif kind == "S" and fields:
                found["stamp"] = fields[0]
            elif kind == "R" and len(fields) == 2:
                found["running"][fields[0]] = fields[1]
            elif kind == "H" and len(fields) == 2:
                found["health"][fields[0]] = fields[1]
        return found


@operation()
def compose_up(
    directory: str,
    project: str,
    health: dict[str, str],
    files: Sequence[str],
    images: Sequence[str],
    wait_seconds: int = 300,
    up_when: Sequence = (),
    url: str = "",
):
    """`docker compose up` when the stack's files or images changed since the last successful
    `up`, or a service is not running (compose recreates only the containers whose own
    configuration changed); then wait until every health URL answers 200, or fail with the
    failing service's last log lines."""
    now = host.get_fact(ComposeState, directory=directory, project=project, files=tuple(files), images=tuple(images), urls=tuple(health.values()))
    stopped = [service for service in health if now["running"].get(service) != "running"]
    unhealthy = [service for service, check in health.items() if now["health"].get(check) != "200"]
    bring_up = bool(stopped) or not now["stamp"] or now["stamp"] != now["digest"] or changed(up_when)
    if bring_up:
        yield script(
            [
                f"cd {q(directory)}",
                "if ! docker compose up --detach --remove-orphans --quiet-pull; then "
                "docker compose logs --no-color --tail 30 >&2; exit 1; fi",
            ]
        )
    if bring_up or unhealthy:
        waits = [
            f"until [ \"$({HTTP_STATUS} {q(check)})\" = 200 ]; do "
            f"if [ $(date +%s) -ge $deadline ]; then echo \"{service} did not answer 200 on {check} within {wait_seconds} s; "
            f"its last log lines:\" >&2; docker compose logs --no-color --tail 30 {q(service)} >&2; exit 1; fi; sleep 2; done"
            for service, check in health.items()
        ]
        # Stamped only once healthy: a stack that never came up is brought up again next run.
        yield script(
            [f"cd {q(directory)}", f"deadline=$(( $(date +%s) + {wait_seconds} ))", *waits, f"{_stack_digest(files, images)} > {STACK_STAMP}"]
        )
    if url and state.is_executing:
        host.log(f"JupyterHub: {url}", logger.info)


class RegistryImages(FactBase):
    """For each image of the local registry: 'L' if the engine has it, 'R' if the registry does."""

    def command(self, images: tuple[tuple[str, str, str], ...], registry: str) -> str:
        lines = []
        for ref, name, tag in images:
            lines.append(f"docker image inspect {q(ref)} >/dev/null 2>&1 && echo {q('L ' + ref)}")
            lines.append(
                f"[ \"$({HTTP_STATUS} -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' "
                f"{q(f'http://{registry}/v2/{name}/manifests/{tag}')})\" = 200 ] && echo {q('R ' + ref)}"
            )
        return "; ".join(lines) + "; true"

    @staticmethod
    def default():
        return {"local": set(), "registry": set()}

    def process(self, output):
        found = self.default()
        for line in output:
            kind, _, ref = line.strip().partition(" ")
            found["local" if kind == "L" else "registry"].add(ref)
        return found


@dataclass(frozen=True)
class ImageBuild:
    ref: str  # localhost:5000/<name>:<tag>
    name: str
    tag: str  # a digest of the build context: a new tag exactly when the context changes
    context: str  # build context directory on the host
    build_args: tuple[tuple[str, str], ...] = ()


@operation()
def registry_images(images: Sequence[ImageBuild], registry: str):
    """Each image built on the host (if the registry lacks it), pushed to the local registry,
    and present in the engine, so a user's first start does not wait for a pull."""
    now = host.get_fact(RegistryImages, images=tuple((i.ref, i.name, i.tag) for i in images), registry=registry)
    steps = []
    for image in images:
        if image.ref not in now["registry"]:
            if image.ref not in now["local"]:
                arguments = " ".join(f"--build-arg {q(f'{k}={v}')}" for k, v in image.build_args)
                steps.append(
                    f"if ! out=$(docker build --quiet {arguments} --tag {q(image.ref)} {q(image.context)} 2>&1); then "
                    f"echo \"image {image.name}: docker build failed:\" >&2; echo \"$out\" | tail -n 30 >&2; exit 1; fi"
                )
            steps.append(f"docker push --quiet {q(image.ref)} >/dev/null")
        elif image.ref not in now["local"]:
            steps.append(f"docker pull --quiet {q(image.ref)} >/dev/null")
    if steps:
        yield script(steps)


@operation()
def python_venv(directory: str, requirements: str, digest: str):
    """A virtualenv at directory/.venv with requirements installed, re-installed only when
    their digest changed (recorded in the venv); pip trusts the system's CA store."""
    stamp = f"{directory}/.venv/.labhub-requirements"
    if host.get_fact(FileLines, path=stamp) != [digest]:
        yield script(
            [
                f"python3 -m venv {q(directory + '/.venv')}",
                f"PIP_CERT=/etc/ssl/certs/ca-certificates.crt {q(directory + '/.venv/bin/pip')} install --quiet "
                f"--disable-pip-version-check -r {q(requirements)}",
                f"echo {digest} > {q(stamp)}",
            ]
        )
