"""Stand-ins for the images a lab pulls from registries, built from Debian packages and PyPI
on the runner (no image registry is reachable here), and saved as archives that the deploy
uploads and loads, exactly as an offline site would:

    labhub-test/jupyterhub        for quay.io/jupyterhub/jupyterhub (JupyterHub + proxy, root),
                                  today's and the previous major (the upgrade test's start)
    labhub-test/registry          for registry:2 (Debian's docker-registry, distribution 2.8.3)
    labhub-test/minimal-notebook  for quay.io/jupyter/minimal-notebook (JupyterLab, user jovyan)
    labhub-test/caddy             for docker.io/library/caddy (Debian's caddy, the official image's layout)

and the test servers that run beside the test hosts:

    labhub-test/pebble            Let's Encrypt's ACME test server (Debian's pebble)
    labhub-test/slapd             OpenLDAP's server (Debian's slapd), configured when it starts

pip and npm reach PyPI and npm through this machine's TLS-inspecting proxy with its CA
passed on their command lines only: the images do not trust that CA, so builds on a test
host that need the network (the hub's own image) depend on the deploy's CA support.
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

from tests.harness.engine import CACHE, DEBIAN_MIRROR, cache_lock, ensure_docker, run

JUPYTERHUB_VERSION = "5.4.3"
PREVIOUS_JUPYTERHUB_VERSION = "4.1.6"
JUPYTERLAB_VERSION = "4.4.10"
PROXY_VERSION = "5.3.0"
RUNNER_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"

VENV = "python3 -m venv /opt/venv && /opt/venv/bin/pip install --quiet --no-cache-dir"
# Chroot steps run with a clean environment (the runner's pip settings point at its own
# disk) and the runner's CA bundle for the proxy, copied in for the build and removed after.
CHROOT_ENV = (
    "env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root SSL_CERT_FILE=/tmp/runner-ca.pem "
    "PIP_CERT=/tmp/runner-ca.pem REQUESTS_CA_BUNDLE=/tmp/runner-ca.pem NODE_EXTRA_CA_CERTS=/tmp/runner-ca.pem"
)



def jupyterhub_image(version: str) -> dict:
    return {
        "tag": f"labhub-test/jupyterhub:{version}",
        "packages": ("python3", "python3-venv", "ca-certificates", "nodejs", "npm"),
        "setup": [
            f"{VENV} jupyterhub=={version}",
            f"npm install --global --silent --cafile /tmp/runner-ca.pem configurable-http-proxy@{PROXY_VERSION}",
            "mkdir -p /srv/jupyterhub",
        ],
        "changes": ["ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "WORKDIR /srv/jupyterhub", "EXPOSE 8000", 'CMD ["jupyterhub"]'],
    }


IMAGES = {
    "jupyterhub": jupyterhub_image(JUPYTERHUB_VERSION),
    # The upgrade test's starting point (as TLJH's --upgrade-from): the last 4.x, whose
    # database JupyterHub 5 migrates (alembic 4621fec11365, "manage roles").
    "jupyterhub-previous": jupyterhub_image(PREVIOUS_JUPYTERHUB_VERSION),
    "registry": {
        "tag": "labhub-test/registry:2.8.3",
        "packages": ("docker-registry", "busybox"),  # busybox: wget for the health check, as in the official image
        "setup": ["mkdir -p /var/lib/registry"],
        # The official image's configuration (Debian's enables htpasswd authentication).
        "files": {
            "/etc/docker/registry/config.yml": (
                "version: 0.1\nlog:\n  fields:\n    service: registry\nstorage:\n  cache:\n    blobdescriptor: inmemory\n"
                "  filesystem:\n    rootdirectory: /var/lib/registry\nhttp:\n  addr: :5000\n  headers:\n"
                "    X-Content-Type-Options: [nosniff]\nhealth:\n  storagedriver:\n    enabled: true\n"
                "    interval: 10s\n    threshold: 3\n"
            )
        },
        "changes": ['ENTRYPOINT ["/usr/bin/docker-registry", "serve"]', 'CMD ["/etc/docker/registry/config.yml"]', "EXPOSE 5000"],
    },
    "minimal-notebook": {
        "tag": "labhub-test/minimal-notebook:debian13",
        "packages": ("python3", "python3-venv", "ca-certificates", "tini"),
        "setup": [
            f"{VENV} jupyterhub=={JUPYTERHUB_VERSION} jupyterlab=={JUPYTERLAB_VERSION}",
            "useradd --create-home --uid 1000 --gid 100 --shell /bin/bash jovyan",
        ],
        "changes": ["ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "ENV HOME=/home/jovyan", "USER 1000", "WORKDIR /home/jovyan", 'CMD ["jupyterhub-singleuser"]'],
    },
    "caddy": {
        "tag": "labhub-test/caddy:2.6.2",
        "packages": ("caddy", "ca-certificates", "busybox"),  # busybox: wget for the health check, as in the official image
        "setup": ["mkdir -p /data /config /etc/caddy"],
        "changes": ["ENV XDG_CONFIG_HOME=/config", "ENV XDG_DATA_HOME=/data", "EXPOSE 80 443",
                    'CMD ["caddy", "run", "--config", "/etc/caddy/Caddyfile", "--adapter", "caddyfile"]'],
    },
    "pebble": {
        "tag": "labhub-test/pebble:2.6.0",
        "packages": ("pebble", "ca-certificates"),
        "setup": [],
        "changes": ['ENTRYPOINT ["/usr/bin/pebble"]'],
    },
    "slapd": {
        "tag": "labhub-test/slapd:2.6",
        "packages": ("slapd", "ldap-utils", "ca-certificates"),
        "setup": [],
        "changes": [],
    },
}
# The stand-ins every test hub loads (caddy only where a test turns TLS on).
HUB_IMAGES = ("jupyterhub", "registry", "minimal-notebook")


def build(name: str) -> tuple[str, Path]:
    """The stand-in image (built once, cached) and its `docker save` archive."""
    with cache_lock(f"image-{name}"):
        return _build(name)


def _build(name: str) -> tuple[str, Path]:
    spec = IMAGES[name]
    recipe = hashlib.sha256(repr(spec).encode() + DEBIAN_MIRROR.encode()).hexdigest()[:12]
    archive = CACHE / "images" / f"{name}-{recipe}.tar"
    if archive.exists():
        return spec["tag"], archive
    ensure_docker()
    archive.parent.mkdir(parents=True, exist_ok=True)
    # The image under this tag, when it was built from this recipe (an older recipe's is rebuilt).
    built_from = run("docker", "image", "inspect", "--format", '{{index .Config.Labels "labhub-test.recipe"}}', spec["tag"], check=False).stdout.strip()
    if built_from != recipe:
        hooks = [f'--customize-hook=cp {RUNNER_CA_BUNDLE} "$1/tmp/runner-ca.pem"']
        hooks += [f"--customize-hook=chroot \"$1\" {CHROOT_ENV} sh -c '{step}'" for step in spec["setup"]]
        hooks += ['--customize-hook=rm -f "$1/tmp/runner-ca.pem"']
        for index, (path, content) in enumerate(spec.get("files", {}).items()):
            local = archive.parent / f"{name}-file-{index}"
            local.write_text(content)
            hooks.append(f"--customize-hook=upload {local} {path}")
        mmdebstrap = subprocess.Popen(
            ["mmdebstrap", "--quiet", "--variant=minbase", f"--include={','.join(spec['packages'])}", *hooks,
             "trixie", "-", DEBIAN_MIRROR],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        changes = [arg for change in [*spec["changes"], f"LABEL labhub-test.recipe={recipe}"] for arg in ("--change", change)]
        imported = subprocess.run(["docker", "import", *changes, "-", spec["tag"]], stdin=mmdebstrap.stdout, capture_output=True, text=True)
        mmdebstrap.stdout.close()
        errors = mmdebstrap.stderr.read().decode()
        if mmdebstrap.wait() != 0 or imported.returncode != 0:
            run("docker", "rmi", "-f", spec["tag"], check=False)  # not a half-built image under this tag
            raise RuntimeError(f"building {spec['tag']} failed:\n{errors[-4000:]}\n{imported.stderr}")
    partial = archive.with_suffix(".partial")
    run("docker", "save", "-o", str(partial), spec["tag"], timeout=600)
    partial.rename(archive)
    return spec["tag"], archive


def build_all() -> dict[str, tuple[str, Path]]:
    return {name: build(name) for name in IMAGES}


def hub_images() -> dict[str, tuple[str, Path]]:
    return {name: build(name) for name in HUB_IMAGES}


if __name__ == "__main__":
    for name, (tag, archive) in build_all().items():
        print(name, tag, archive, f"{archive.stat().st_size / 1e6:.0f} MB")
