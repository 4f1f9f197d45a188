"""A local sandbox: one throwaway Debian 13 server (a container with systemd, sshd and room
for Docker) provisioned by the real deploy, JupyterHub included, so you can see the tool
work without a server.

    python -m tests.sandbox up      # build the images (first time ~5 min), start, provision
    python -m tests.sandbox down    # remove it

The hub's images are built locally from Debian packages and loaded from archives (as an
offline site would), so the sandbox needs no image registry. Afterwards
`pyinfra inventories/sandbox.py deploy.py` re-runs the deploy (and changes nothing),
`pytest labhub/checks --inventory inventories/sandbox.py` verifies it, and the hub answers on
the URL printed at the end. Its lab is group_data/sandbox.py.
"""

from __future__ import annotations

import json
import sys

from pathlib import Path

from tests.harness import cli
from tests.harness.engine import run, testhost_image
from tests.harness.hosts import make_ssh_key, start_host
from tests.harness.images import build_all

STATE = cli.REPO / ".sandbox"
CONTAINER = "labhub-sandbox"


def hub_data() -> dict:
    """The sandbox's hub: images from locally built archives, this machine's CAs (if any)."""
    images = build_all()
    return {
        "image_archives": [str(archive) for _, archive in images.values()],
        "extra_ca_certificates": sorted(str(p) for p in Path("/usr/local/share/ca-certificates").glob("*.crt")),
        "hub": {
            "base_image": images["jupyterhub"][0],
            "registry_image": images["registry"][0],
            "images": [{"name": "notebook", "build_args": {"BASE_IMAGE": images["minimal-notebook"][0]}}],
            "mem_limit": "1G",
        },
    }


def up() -> None:
    image = testhost_image()
    key = make_ssh_key(STATE)
    print("building the hub's images (cached after the first time) ...", flush=True)
    host_data = hub_data()
    print(f"starting {CONTAINER} from {image} ...", flush=True)
    host = start_host("sandbox", image, key, extra_args=("-p", "127.0.0.1::8000"), container=CONTAINER)
    hub_port = int(run("docker", "port", CONTAINER, "8000/tcp").stdout.split()[0].rsplit(":", 1)[1])
    host_data["hub"]["public_url"] = f"http://127.0.0.1:{hub_port}/"
    (STATE / "connection.json").write_text(json.dumps({**host.connection_data(), **host_data}, indent=2) + "\n")
    print("provisioning: pyinfra -y inventories/sandbox.py deploy.py", flush=True)
    deploy = cli.pyinfra("inventories/sandbox.py", "-y", "deploy.py")
    print(deploy.stderr[-3000:])
    if deploy.returncode != 0:
        sys.exit(f"the deploy failed:\n{deploy.explain()}")
    print(
        f"\nThe sandbox is provisioned. Open http://127.0.0.1:{hub_port}/ and log in as alice, bob or\n"
        f"carol: the first login sets the password. Then try:\n"
        f"  .venv/bin/pyinfra inventories/sandbox.py deploy.py        # no changes\n"
        f"  .venv/bin/pytest labhub/checks --inventory inventories/sandbox.py\n"
        f"  ssh -i .sandbox/id_ed25519 -p {host.ssh_port} root@127.0.0.1\n"
        f"  .venv/bin/python -m tests.sandbox down"
    )


def down() -> None:
    run("docker", "rm", "-f", "-v", CONTAINER, check=False)
    (STATE / "connection.json").unlink(missing_ok=True)
    print(f"removed {CONTAINER}")


if __name__ == "__main__":
    commands = {"up": up, "down": down}
    if len(sys.argv) != 2 or sys.argv[1] not in commands:
        sys.exit(__doc__)
    commands[sys.argv[1]]()
