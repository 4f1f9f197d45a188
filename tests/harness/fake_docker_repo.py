"""Build a signed apt repository that looks like Docker's, from Debian's own packages.

Docker's repository is not reachable from the test machines, so this script (run inside a
throwaway Debian 13 container, see `aptrepo.py`) downloads Debian's docker.io, docker-cli,
containerd, runc, docker-buildx and docker-compose, renames them to Docker's package names
(runc merged into containerd.io, as Docker ships it), and publishes them twice:

    OUT/repo/dists/trixie/stable      Docker's layout   (source 'official')
    OUT/repo/dists/lab-mirror/docker  a mirror's layout (source 'mirror')

signed with a fresh key: OUT/repo/gpg (armored public key), OUT/fingerprint.
Usage: python3 fake_docker_repo.py OUT
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

DOCKER_VERSION = "5:26.1.5-1~debian.13~trixie"

# Docker's name: (Debian packages whose files it carries, version, control fields to set).
PACKAGES = {
    "docker-ce": (
        ["docker.io"],
        DOCKER_VERSION,
        {
            "Depends": "libc6 (>= 2.34), libsystemd0, adduser, containerd.io (>= 1.4), iptables, "
            "sysvinit-utils (>= 3.05-4~), tini",
            "Recommends": "apparmor, ca-certificates, docker-ce-cli, git, xz-utils",
            "Conflicts": "docker.io, docker-engine",
            "Suggests": None,
            "Built-Using": None,
        },
    ),
    "docker-ce-cli": (["docker-cli"], DOCKER_VERSION, {"Conflicts": "docker-cli, podman-docker", "Built-Using": None}),
    "containerd.io": (
        ["containerd", "runc"],
        "1.7.24-1",
        {
            "Depends": "libc6 (>= 2.38), libseccomp2 (>= 2.5.0)",
            "Provides": "containerd, runc",
            "Conflicts": "containerd, runc",
            "Replaces": "containerd, runc",
            "Breaks": None,
            "Built-Using": None,
        },
    ),
    "docker-buildx-plugin": (["docker-buildx"], "0.13.1-1~debian.13~trixie", {"Conflicts": "docker-buildx", "Built-Using": None}),
    "docker-compose-plugin": (["docker-compose"], "2.26.1-1~debian.13~trixie", {"Conflicts": "docker-compose", "Built-Using": None}),
}
SUITES = [("trixie", "stable"), ("lab-mirror", "docker")]


def run(*cmd: str, **kwargs) -> str:
    return subprocess.run(cmd, check=True, text=True, stdout=subprocess.PIPE, **kwargs).stdout


def set_fields(control: str, package: str, version: str, fields: dict) -> str:
    """Rewrite a DEBIAN/control: one field per line start, continuation lines kept."""
    entries: list[list[str]] = []
    for line in control.splitlines():
        if line[:1] in (" ", "\t") and entries:
            entries[-1][1] += "\n" + line
        elif ":" in line:
            key, value = line.split(":", 1)
            entries.append([key, value.strip()])
    wanted = {"Package": package, "Version": version, **fields}
    out, seen = [], set()
    for key, value in entries:
        seen.add(key)
        if key in wanted:
            if wanted[key] is not None:
                out.append(f"{key}: {wanted[key]}")
        else:
            out.append(f"{key}: {value}")
    out += [f"{k}: {v}" for k, v in wanted.items() if k not in seen and v is not None]
    return "\n".join(out) + "\n"


def main(out: Path) -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run("apt-get", "update", "-qq", env=env)
    run("apt-get", "install", "-y", "-qq", "--no-install-recommends", "apt-utils", "gpg", "gpg-agent", env=env)
    work = Path("/tmp/repackage")
    shutil.rmtree(work, ignore_errors=True)
    (work / "debs").mkdir(parents=True)
    sources = sorted({src for srcs, _, _ in PACKAGES.values() for src in srcs})
    run("apt-get", "download", *sources, cwd=work / "debs")

    pool = out / "repo" / "pool"
    pool.mkdir(parents=True)
    for name, (srcs, version, fields) in PACKAGES.items():
        tree = work / name
        first, *rest = [next((work / "debs").glob(f"{src}_*.deb")) for src in srcs]
        run("dpkg-deb", "-R", str(first), str(tree))
        for deb in rest:  # merged packages carry the other package's files too
            run("dpkg-deb", "-x", str(deb), str(tree))
        (tree / "DEBIAN" / "md5sums").unlink(missing_ok=True)
        control = tree / "DEBIAN" / "control"
        control.write_text(set_fields(control.read_text(), name, version, fields))
        run("dpkg-deb", "--root-owner-group", "-Zzstd", "-z1", "-b", str(tree), str(pool / f"{name}.deb"))

    gnupg = work / "gnupg"
    gnupg.mkdir(mode=0o700)
    genv = {**env, "GNUPGHOME": str(gnupg)}
    run("gpg", "--batch", "--pinentry-mode", "loopback", "--passphrase", "", "--quick-gen-key", "labhub test repository", "ed25519", "sign", "never", env=genv)
    fingerprint = run("gpg", "--batch", "--with-colons", "--list-keys", env=genv).split("fpr:::::::::")[1].split(":")[0]
    (out / "fingerprint").write_text(fingerprint + "\n")
    (out / "repo" / "gpg").write_text(run("gpg", "--batch", "--armor", "--export", fingerprint, env=genv))

    repo = out / "repo"
    for suite, component in SUITES:
        binary = repo / "dists" / suite / component / "binary-amd64"
        binary.mkdir(parents=True)
        (binary / "Packages").write_text(run("apt-ftparchive", "packages", "pool", cwd=repo))
        release = run(
            "apt-ftparchive",
            "-o", f"APT::FTPArchive::Release::Suite={suite}",
            "-o", f"APT::FTPArchive::Release::Codename={suite}",
            "-o", f"APT::FTPArchive::Release::Components={component}",
            "-o", "APT::FTPArchive::Release::Architectures=amd64",
            "release", f"dists/{suite}",
            cwd=repo,
        )
        (repo / "dists" / suite / "Release").write_text(release)
        run("gpg", "--batch", "--yes", "--clearsign", "-o", f"dists/{suite}/InRelease", f"dists/{suite}/Release", cwd=repo, env=genv)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
