"""apt: packages installed and removed from one read of dpkg's state, riding through what a
real server meets (a dpkg lock held by unattended-upgrades or by a deploy cut off a moment
ago, a dpkg killed halfway, a package source briefly away); and an apt signing key trusted
only when its fingerprint is the pinned one."""

from __future__ import annotations

from collections.abc import Sequence

from pyinfra import host, logger
from pyinfra.api import FactBase, operation

from labhub.config import Apt
from labhub.ops import facts
from labhub.ops.shell import changed, q, script

# Shell: "PID (command)" of a process holding dpkg's lock, if any (read from /proc/locks,
# where fcntl locks show with the inode of the file they lock).
# debconf's database too: a maintainer script orphaned by a killed dpkg still holds it while it
# runs, and `dpkg --configure -a` would fail on it ("config.dat is locked by another process").
DPKG_LOCK_HOLDER = (
    "dpkg_lock_holder() { for lock in /var/lib/dpkg/lock-frontend /var/lib/dpkg/lock /var/cache/debconf/config.dat; do "
    "inode=$(stat -c %i \"$lock\" 2>/dev/null) || continue; "
    "for pid in $(awk -v inode=\"$inode\" '{n=split($6,f,\":\"); if (f[n]==inode) print $5}' /proc/locks); do "
    "echo \"$pid ($(cat /proc/$pid/comm 2>/dev/null || echo ended))\"; done; done | head -n 1; }"
)


class PackageState(FactBase):
    """Installed packages (name -> versions); whether dpkg was interrupted (its journal in
    /var/lib/dpkg/updates is not empty, or `dpkg --audit` names packages left half-done); and
    who holds the dpkg lock right now."""

    def command(self) -> str:
        return (
            "dpkg-query -W -f='${db:Status-Abbrev} ${Package} ${Version}\\n' 2>/dev/null | awk '$1 ~ /^[ih]i/ {print \"P \" $2 \" \" $3}'; "
            "[ -n \"$(ls -A /var/lib/dpkg/updates 2>/dev/null)\" ] && echo 'I its journal holds unfinished work'; "
            "dpkg --audit 2>/dev/null | grep -q . && echo 'I packages are left half-installed'; "
            f"{DPKG_LOCK_HOLDER}; holder=$(dpkg_lock_holder); [ -n \"$holder\" ] && echo \"L $holder\"; true"
        )

    @staticmethod
    def default():
        return {"installed": {}, "interrupted": [], "lock_holder": None}

    def process(self, output):
        found = self.default()
        for line in output:
            kind, _, rest = line.strip().partition(" ")
            if kind == "P" and " " in rest:
                name, version = rest.split(" ", 1)
                found["installed"].setdefault(name, set()).add(version)
            elif kind == "I":
                found["interrupted"].append(rest)
            elif kind == "L":
                found["lock_holder"] = rest
        return found


def _apt_get(settings: Apt) -> str:
    return (
        f"apt-get -y -q -o DPkg::Lock::Timeout={settings.lock_timeout} -o Acquire::Retries={settings.retries} "
        "-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold"
    )


def _prelude(settings: Apt) -> list[str]:
    """Shell: wait (bounded) until no one holds the dpkg lock, saying who does."""
    timeout = settings.lock_timeout
    return [
        "export DEBIAN_FRONTEND=noninteractive",
        DPKG_LOCK_HOLDER,
        f"deadline=$(( $(date +%s) + {timeout} )); said=",
        "while holder=$(dpkg_lock_holder); [ -n \"$holder\" ]; do "
        f"[ -n \"$said\" ] || {{ echo \"waiting up to {timeout} s for the dpkg lock, held by $holder\" >&2; said=1; }}; "
        f"if [ $(date +%s) -ge $deadline ]; then echo \"the dpkg lock is still held by $holder after {timeout} s "
        "(apt.lock_timeout); nothing was installed: wait for it to finish, or stop it, and run again\" >&2; exit 1; fi; "
        "sleep 2; done",
    ]


def _update(settings: Apt) -> str:
    """Shell: `apt-get update`, tried again while a source fails (apt-get says so and may
    still exit 0); when one stays unreachable, its own lines name it."""
    return (
        f"tries=0; while :; do out=$({_apt_get(settings)} update 2>&1) && "
        "! printf '%s\\n' \"$out\" | grep -qE '^(W|E): (Failed to fetch|Some index files failed|The repository)' && break; "
        f"tries=$((tries + 1)); if [ $tries -gt {settings.retries} ]; then "
        "printf '%s\\n' \"$out\" | grep -E '^(W|E):' >&2; "
        f"echo \"apt-get update: a package source stayed unreachable after {settings.retries + 1} tries (named above); nothing was installed\" >&2; "
        "exit 1; fi; sleep $((tries * 5)); done"
    )


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


@operation()
def packages(install: Sequence[str] = (), remove: Sequence[str] = (), refresh_when: Sequence = (), settings: Apt = Apt()):
    """Install and remove apt packages from one read of dpkg's state. `apt-get update` runs
    only when something must be installed or a source in `refresh_when` changed. Before any
    of it: a dpkg that was interrupted is repaired (`dpkg --configure -a`, then apt-get's
    own fix-up), and a held dpkg lock is waited for, up to settings.lock_timeout."""
    now = facts.get(PackageState)
    installed = now["installed"]

    def missing(spec: str) -> bool:
        name, _, version = spec.partition("=")
        return name not in installed or bool(version and version not in installed[name])

    steps = []
    if now["interrupted"]:
        host.log(f"dpkg was interrupted ({'; '.join(now['interrupted'])}): repairing it with `dpkg --configure -a` first", logger.warning)
        steps += [
            "echo 'dpkg was interrupted: running dpkg --configure -a' >&2",
            "dpkg --force-confdef --force-confold --configure -a",
            f"{_apt_get(settings)} --fix-broken install",
        ]
    to_remove = [name for name in remove if name in installed]
    to_install = [spec for spec in install if missing(spec)]
    if to_remove:
        steps.append(f"{_apt_get(settings)} remove {' '.join(q(name) for name in to_remove)}")
    if to_install or changed(refresh_when):
        steps.append(_update(settings))
    if to_install:
        steps.append(f"{_apt_get(settings)} install --allow-downgrades {' '.join(q(spec) for spec in to_install)}")
    if steps:
        if now["lock_holder"]:
            host.log(f"the dpkg lock is held by {now['lock_holder']}: waiting for it, up to {settings.lock_timeout} s", logger.warning)
        yield script([*_prelude(settings), *steps])


@operation()
def signing_key(url: str, fingerprint: str, keyring: str):
    """Fetch an apt signing key and install it as `keyring` only if its fingerprint is the
    pinned one; the keyring holds that one key and nothing else from the download."""
    if facts.get(KeyFingerprints, path=keyring) == [fingerprint]:
        return
    yield script(
        [
            "tmp=$(mktemp -d); trap 'rm -rf \"$tmp\"' EXIT",
            f"curl -fsSL --retry 3 -o \"$tmp/download\" {q(url)}",
            "got=$(" + _FINGERPRINTS.format(file='"$tmp/download"') + " | tr '\\n' ' ')",
            f"case \" $got\" in *\" {fingerprint} \"*) ;; *) got=${{got% }}; echo {q(f'refusing the key from {url}: its fingerprint is')} "
            f"\"${{got:-unreadable}},\" {q(f'the pinned one is {fingerprint}; apt was not changed')} >&2; exit 1;; esac",
            "GNUPGHOME=\"$tmp\" gpg --batch --quiet --import \"$tmp/download\"",
            f"GNUPGHOME=\"$tmp\" gpg --batch --export {fingerprint} > \"$tmp/keyring\"",
            f"install -D -m 644 -o root -g root \"$tmp/keyring\" {q(keyring)}",
        ]
    )
