"""Files and directories with their content, owner and mode, from one fact whatever their
number; and a block of our lines in a file that others edit too (/etc/fstab)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from io import BytesIO

from pyinfra import host
from pyinfra.api import FactBase, FileUploadCommand, OperationError, operation

from labhub.ops import facts
from labhub.ops.shell import q, script


class PathStates(FactBase):
    """type, mode, owner, group (and sha256 for regular files) of each existing path, and the
    files found in each of the `listed` directories (under the key "%files")."""

    @staticmethod
    def default():
        return {"%files": set()}

    def command(self, paths: tuple[str, ...], listed: tuple[str, ...] = ()) -> str:
        quoted = " ".join(q(p) for p in paths)
        listing = "".join(f"for f in {q(d)}/*; do [ -f \"$f\" ] && printf 'F\\t%s\\n' \"$f\"; done; " for d in listed)
        # Four processes whatever the number of paths (one stat, one sha256sum of the regular
        # files among them, as `[ -f ]` finds them: never a FIFO's read): a fact read on every run.
        states = (
            f"stat -c 'S\t%n\t%F\t%a\t%U\t%G' -- {quoted} 2>/dev/null; "
            f"find -L {quoted} -maxdepth 0 -type f -exec sha256sum -- {{}} + 2>/dev/null | sed 's/^/H\t/'; "
        ) if paths else ""
        return states + listing + "true"

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
                if path in states:  # removed between the two reads: its stat line is missing
                    states[path]["sha256"] = digest
        return states


class FileLines(FactBase):
    """The lines of a text file; None when there is no such file."""

    def command(self, path: str) -> str:
        return f"if [ -f {q(path)} ]; then echo '%file'; cat {q(path)}; fi"

    def process(self, output):
        return output[1:] if output and output[0] == "%file" else None


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
def managed(
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
    current = facts.get(PathStates, output_hidden=any(f.secret for f in files), paths=paths, listed=tuple(purge))
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


class MountPoints(FactBase):
    """Which of the paths have something mounted on them."""

    @staticmethod
    def default():
        return set()

    def command(self, paths: tuple[str, ...]) -> str:
        return f"for p in {' '.join(q(p) for p in paths)}; do mountpoint -q -- \"$p\" && echo \"$p\"; done; true"

    def process(self, output):
        return set(output)


@operation()
def directories_on_mounts(directories: Sequence[tuple[str, str]]):
    """(directory, mount point) pairs: each directory made with `mkdir -p` where missing, once
    its mount point is mounted, and otherwise left as it is: on a share the file server
    decides owners and modes (a chown there fails or lies). Not mounted: a warning, nothing
    made underneath."""
    current = facts.get(PathStates, paths=tuple(d for d, _ in directories))
    mounted = facts.get(MountPoints, paths=tuple(sorted({m for _, m in directories})))
    missing = []
    for directory, mount_point in directories:
        if directory in current:
            if current[directory]["type"] != "directory":
                raise OperationError(f"{directory} exists but is a {current[directory]['type']}, not a directory")
        elif mount_point in mounted:
            missing.append(directory)
        else:
            host.noop(f"{directory} not made: nothing is mounted on {mount_point}")
    if missing:
        yield script([f"mkdir -p {q(path)}" for path in missing])


@operation()
def block(path: str, lines: Sequence[str], marker: str):
    """Our lines between '# BEGIN <marker>' and '# END <marker>' in a file that others edit
    too (/etc/fstab): replaced in place, duplicates dropped, the rest kept as it is; an empty
    `lines` removes the block. The file is replaced atomically, keeping its owner and mode.
    (pyinfra's files.block puts the marker into an awk regex unescaped, and is in beta.)"""
    begin, end = f"# BEGIN {marker}", f"# END {marker}"
    current = facts.get(FileLines, path=path)
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
