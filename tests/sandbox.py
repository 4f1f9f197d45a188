"""A local sandbox: one throwaway Debian 13 server (a container with systemd, sshd and room
for Docker) provisioned by the real deploy, JupyterHub included, so you can see the tool
work without a server.

    make sandbox                    # = python -m tests.sandbox up (after scripts/setup)
    python -m tests.sandbox up      # build the images (first time ~5 min), start, provision
    python -m tests.sandbox up --https   # the same behind the TLS proxy, with a certificate of its own CA
    python -m tests.sandbox down    # remove it

The hub's images are built locally from Debian packages and loaded from archives (as an
offline site would), so the sandbox needs no image registry. Its SSH and hub ports on the
loopback are chosen once and kept: after the container (or this machine) restarts, `up`
starts it again and re-runs the deploy, and the printed URL stays right. Afterwards
`pyinfra inventories/sandbox.py deploy.py` re-runs the deploy (and changes nothing),
`pytest labhub/checks --inventory inventories/sandbox.py` verifies it. Its lab is
group_data/sandbox.py.
"""

from __future__ import annotations

import json
import os
import secrets as secrets_module
import sys
from pathlib import Path

from labhub.local import REPO
from labhub.secrets import secrets_file
from tests.harness import cli
from tests.harness.engine import run, testhost_image
from tests.harness.hosts import TestHost, wait_for_ssh, free_port, make_ssh_key, start_host
from tests.harness.images import build, hub_images

STATE = cli.REPO / ".sandbox"
CONNECTION = STATE / "connection.json"
PORTS = STATE / "ports.json"  # the loopback ports of its hub (8000) and its TLS proxy (443)
CONTAINER = "labhub-sandbox"
HTTPS_NAME = "hub.sandbox.localhost"  # *.localhost: the loopback, for browsers and curl alike
# Its CA and the hub's certificate: outside the repository, where a lab's TLS key must live too.
SANDBOX_CA = Path.home() / ".cache" / "labhub-sandbox" / "ca"


def hub_data() -> dict:
    """The sandbox's hub: images from locally built archives, this machine's CAs (if any)."""
    images = hub_images()
    return {
        "image_archives": [str(archive) for _, archive in images.values()],
        "extra_ca_certificates": sorted(str(p) for p in Path("/usr/local/share/ca-certificates").glob("*.crt")),
        "hub": {
            "base_image": images["jupyterhub"][0],
            "registry_image": images["registry"][0],
            "images": [{"name": "notebook", "build_args": {"BASE_IMAGE": images["minimal-notebook"][0]}}],
            "mem_limit": "1G",
            # On this machine's loopback only: the first login sets the password, no setup code
            # (a real lab keeps them: docs/logins.md).
            "login": {"first_login": "open"},
        },
    }


def container_state() -> str | None:
    """'running', 'exited', ... or None when there is no sandbox container."""
    inspect = run("docker", "inspect", "--format", "{{.State.Status}}", CONTAINER, check=False)
    return inspect.stdout.strip() if inspect.returncode == 0 else None


def started() -> tuple[TestHost, dict]:
    """The sandbox host, started if it was stopped, or created on ports kept from now on."""
    key = make_ssh_key(STATE)
    state = container_state()
    if state is not None and CONNECTION.exists() and PORTS.exists():
        connection = json.loads(CONNECTION.read_text())
        host = TestHost("sandbox", CONTAINER, connection["ssh_port"], key)
        if state != "running":
            print(f"starting the existing {CONTAINER} again ...", flush=True)
            run("docker", "start", CONTAINER)
        wait_for_ssh(host)
        return host, json.loads(PORTS.read_text())
    image = testhost_image()
    ssh_port, ports = free_port(), {"hub": free_port(), "https": free_port()}
    print(f"starting {CONTAINER} from {image} ...", flush=True)
    host = start_host("sandbox", image, key, extra_args=("-p", f"127.0.0.1:{ports['hub']}:8000", "-p", f"127.0.0.1:{ports['https']}:443"),
                      container=CONTAINER, ssh_port=ssh_port)
    PORTS.write_text(json.dumps(ports) + "\n")
    return host, ports


def with_https(host_data: dict, port: int) -> str:
    """The hub behind the TLS proxy (the caddy stand-in image) with a certificate of the
    sandbox's own CA (SANDBOX_CA): the address to open."""
    from tests.harness.tlslab import LabCA

    ca = LabCA(SANDBOX_CA)
    certificate, key = ca.issue("sandbox-hub", [HTTPS_NAME], days=365)
    proxy_image, proxy_archive = build("caddy")
    host_data["image_archives"].append(str(proxy_archive))
    host_data["hub"]["public_url"] = f"https://{HTTPS_NAME}:{port}/"
    host_data["hub"]["tls"] = {"mode": "files", "certificate": str(certificate), "key": str(key), "proxy_image": proxy_image}
    return f"https://{HTTPS_NAME}:{port}/ (your browser trusts it once it trusts {ca.path})"


def up(https: bool = False) -> None:
    print("building the hub's images (cached after the first time) ...", flush=True)
    host_data = hub_data()
    host, ports = started()
    address = f"http://127.0.0.1:{ports['hub']}/"
    host_data["hub"]["public_url"] = address
    if https:
        address = with_https(host_data, ports["https"])
    CONNECTION.write_text(json.dumps({**host.connection_data(), **host_data}, indent=2) + "\n")
    # The backup's password (group_data/sandbox.py), generated once, never committed; the file
    # is created 0600, so the password is never readable by others, not even for a moment.
    secrets = secrets_file(REPO / "inventories" / "sandbox.py")
    if "[backup]" not in (secrets.read_text() if secrets.exists() else ""):
        with os.fdopen(os.open(secrets, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "a") as file:
            file.write(f'\n[backup]\npassword = "{secrets_module.token_urlsafe(24)}"\n')
    print("provisioning: pyinfra -y inventories/sandbox.py deploy.py", flush=True)
    deploy = cli.pyinfra("inventories/sandbox.py", "-y", "deploy.py")
    print(deploy.stderr[-3000:])
    if deploy.returncode != 0:
        sys.exit(f"the deploy failed:\n{deploy.explain()}")
    host.exec("systemctl start labhub-backup")  # the first night's backup now: the lab page has a snapshot to show
    print(
        f"\nThe sandbox is provisioned. Open {address} and log in as alice, bob or\n"
        f"carol: the first login sets the password. The lab's page: {host_data['hub']['public_url']}services/lab/\n"
        f"Then try:\n"
        f"  .venv/bin/pyinfra inventories/sandbox.py deploy.py        # no changes\n"
        f"  .venv/bin/pytest labhub/checks --inventory inventories/sandbox.py\n"
        f"  ./drift-check inventories/sandbox.py\n"
        f"  ssh -i .sandbox/id_ed25519 -p {host.ssh_port} root@127.0.0.1\n"
        f"  make sandbox-down"
    )


def down() -> None:
    run("docker", "rm", "-f", "-v", CONTAINER, check=False)
    CONNECTION.unlink(missing_ok=True)
    PORTS.unlink(missing_ok=True)
    print(f"removed {CONTAINER}")


if __name__ == "__main__":
    if sys.argv[1:] in (["up"], ["up", "--https"]):
        up(https=sys.argv[2:] == ["--https"])
    elif sys.argv[1:] == ["down"]:
        down()
    else:
        sys.exit(__doc__)
