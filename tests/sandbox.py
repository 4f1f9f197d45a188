"""A local sandbox: one throwaway Debian 13 server (a container with systemd, sshd and room
for Docker) provisioned by the real deploy, so you can see the tool work without a server.

    python -m tests.sandbox up      # build the image (first time ~1 min), start, provision
    python -m tests.sandbox down    # remove it

Afterwards `pyinfra inventories/sandbox.py deploy.py` re-runs the deploy against it (and
shows no changes), `pytest tests/host --inventory inventories/sandbox.py` verifies it, and
`ssh -i .sandbox/id_ed25519 -p PORT root@127.0.0.1` logs in. Its lab is group_data/sandbox.py.
"""

from __future__ import annotations

import json
import sys

from tests.harness import cli
from tests.harness.engine import run, testhost_image
from tests.harness.hosts import make_ssh_key, start_host

STATE = cli.REPO / ".sandbox"
CONTAINER = "labhub-sandbox"


def up() -> None:
    image = testhost_image()
    key = make_ssh_key(STATE)
    print(f"starting {CONTAINER} from {image} ...", flush=True)
    host = start_host("sandbox", image, key, container=CONTAINER)
    (STATE / "connection.json").write_text(json.dumps(host.connection_data(), indent=2) + "\n")
    print("provisioning: pyinfra -y inventories/sandbox.py deploy.py", flush=True)
    deploy = cli.pyinfra("inventories/sandbox.py", "-y", "deploy.py")
    print(deploy.stderr[-3000:])
    if deploy.returncode != 0:
        sys.exit(f"the deploy failed:\n{deploy.explain()}")
    print(
        f"\nThe sandbox is provisioned. Try:\n"
        f"  .venv/bin/pyinfra inventories/sandbox.py deploy.py        # no changes\n"
        f"  .venv/bin/pytest tests/host --inventory inventories/sandbox.py\n"
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
