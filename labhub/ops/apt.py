"""apt: packages installed and removed from one `dpkg -l`, and an apt signing key trusted
only when its fingerprint is the pinned one."""

from __future__ import annotations

from collections.abc import Sequence

from pyinfra import host
from pyinfra.api import FactBase, operation
from pyinfra.facts.apt import noninteractive_apt
from pyinfra.facts.deb import DebPackages

from labhub.ops.shell import changed, q, script


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
def signing_key(url: str, fingerprint: str, keyring: str):
    """Fetch an apt signing key and install it as `keyring` only if its fingerprint is the
    pinned one; the keyring holds that one key and nothing else from the download."""
    if host.get_fact(KeyFingerprints, path=keyring) == [fingerprint]:
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
