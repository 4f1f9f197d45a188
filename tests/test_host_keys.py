"""A reinstalled server has new SSH host keys. The next run stops for it, never accepting the new
key, with one message (labhub/ssh_host_keys.py): which server, that its key changed, that this
is expected after a reinstall, what to check and the command that removes the old key. After
that command the run goes on."""

from __future__ import annotations

import shlex

import pytest

from tests.harness import cli
from tests.harness.engine import run
from tests.harness.hosts import remove_host, start_host, write_inventory

pytestmark = pytest.mark.host


def test_a_server_reinstalled_under_the_same_name_and_port_stops_with_one_clear_message(tmp_path, testhost_image, ssh_key):
    known_hosts = tmp_path / "known_hosts"
    host = start_host("reinstalled", testhost_image, ssh_key)
    try:
        scanned = run("ssh-keyscan", "-p", str(host.ssh_port), "127.0.0.1").stdout
        known_hosts.write_text(scanned)
        inventory = write_inventory(tmp_path / "inventory.py", [(host, {
            "ssh_known_hosts_file": str(known_hosts), "ssh_strict_host_key_checking": "yes", "users": []})])
        assert cli.pyinfra(inventory, "exec", "--", "true").returncode == 0, "the recorded key is accepted"

        # The same server reinstalled: the same name and SSH port, new host keys.
        port, container = host.ssh_port, host.container
        remove_host(host)
        host = start_host("reinstalled", testhost_image, ssh_key, container=container, ssh_port=port)
        run("docker", "exec", container, "sh", "-c", "rm -f /etc/ssh/ssh_host_* && ssh-keygen -A >/dev/null && systemctl restart ssh")
        entry = f"[127.0.0.1]:{port}"

        stopped = cli.pyinfra(inventory, "-y", "deploy.py")
        assert stopped.returncode != 0, stopped.explain()
        assert "SSH host key error" in stopped.output and "does not match" in stopped.output, stopped.output
        assert f"reinstalled ({entry}): the server's SSH host key has changed since labhub last connected" in stopped.output, stopped.output
        assert "expected after the server was reinstalled" in stopped.output
        assert "someone may be between you and it" in stopped.output
        assert f"ssh-keyscan -p {port} 127.0.0.1" in stopped.output
        remove = f"ssh-keygen -R {shlex.quote(entry)} -f {shlex.quote(str(known_hosts))}"
        assert remove in stopped.output, stopped.output
        assert "REMOTE HOST IDENTIFICATION HAS CHANGED" not in stopped.output, "one message, labhub's"
        assert known_hosts.read_text() == scanned, "the new key was not accepted"
        assert host.exec("test -e /etc/docker", check=False).returncode != 0, "nothing was done on the server"

        run(*shlex.split(remove))
        known_hosts.write_text(known_hosts.read_text() + run("ssh-keyscan", "-p", str(port), "127.0.0.1").stdout)
        again = cli.pyinfra(inventory, "exec", "--", "true")
        assert again.returncode == 0, again.explain()
    finally:
        remove_host(host)
