"""A deploy cut off halfway re-converges: the real pyinfra CLI is killed (as a dropped laptop
or a Ctrl-C would) at three points of a fresh converge of a hub host, once together with the
host's own dpkg (as a power cut would). After each cut the next run converges, the run after
it changes nothing, the host checks pass, and no file is left half-written and no secret in
a temporary file. Cases run in order on one host."""

from __future__ import annotations

import subprocess
import time

import pytest

from tests.harness import cli
from tests.harness.hosts import remove_host, start_host, write_inventory
from tests.harness.hublab import SHARE_CREDENTIALS, hub_data
from tests.harness.lab import write_secrets

pytestmark = [pytest.mark.host, pytest.mark.hub]

STACK = "/opt/jupyterhub"


class CutHost:
    def __init__(self, host, inventory):
        self.host, self.inventory = host, inventory

    def sh(self, command: str, check: bool = True) -> str:
        return self.host.exec(command, check=check).stdout.strip()

    def cut_when(self, condition: str, then: str = "", timeout: float = 900) -> str:
        """Start the deploy, and kill it (SIGKILL) once `condition` holds on the host; `then`
        runs on the host just before. Returns pyinfra's output up to the cut."""
        deploy = subprocess.Popen([str(cli.BIN / "pyinfra"), str(self.inventory), "-y", "deploy.py"], cwd=cli.REPO,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + timeout
        try:
            while self.host.exec(condition, check=False).returncode != 0:
                assert deploy.poll() is None, f"the deploy ended before the cut point:\n{deploy.stdout.read()[-3000:]}"
                assert time.monotonic() < deadline, f"the cut point never came: {condition}"
                time.sleep(0.2)
            if then:
                self.host.exec(then, check=False)
        finally:
            deploy.kill()
        return deploy.communicate()[0]

    def converges_and_holds(self) -> None:
        """What must be true after a cut: converge, then nothing to do, checks pass, no leftovers."""
        results = cli.converge(self.inventory)
        assert results["totals"]["error"] == 0
        assert cli.changed_operations(cli.converge(self.inventory)) == {}, "the run after it changes nothing"
        checks = cli.host_checks(self.inventory)
        assert checks.returncode == 0, checks.explain()
        staged = self.sh("find /etc /opt /usr/local /var/tmp -name '*.labhub-new' 2>/dev/null; ls /var/tmp/labhub-*.tar 2>/dev/null; true")
        assert staged == "", f"half-written files left: {staged}"
        secrets = [password for _, password in SHARE_CREDENTIALS.values()] + self.sh(f"cut -d= -f2 {STACK}/secrets.env").split()
        # Not runc's /tmp/runc-process*: Docker's own spec of a `docker exec` (the hub's health
        # check, with the hub's environment), root-only and gone once the process starts; a
        # full run once caught one mid-exec.
        found = self.sh("grep -rlF --exclude='runc-process*' " + " ".join(f"-e '{s}'" for s in secrets) + " /tmp /var/tmp /root /home 2>/dev/null; true")
        assert found == "", f"a secret in a temporary file: {found}"

    def remove_stack(self, images: bool = False) -> None:
        """Back to a server without the hub, so the next run sets it up again."""
        self.sh(f"cd {STACK} && docker compose down --volumes --remove-orphans >/dev/null 2>&1; rm -rf {STACK}")
        if images:
            self.sh("docker images --format '{{.Repository}}:{{.Tag}}' | grep '^labhub/hub:' | xargs -r docker rmi >/dev/null")


@pytest.fixture(scope="module")
def cut(tmp_path_factory, testhost_image, ssh_key):
    data = hub_data()
    host = start_host("cuthost", testhost_image, ssh_key)
    try:
        inventory = write_inventory(tmp_path_factory.mktemp("cut") / "cut_hosts.py", [(host, data)])
        write_secrets(inventory, SHARE_CREDENTIALS)
        yield CutHost(host, inventory)
    finally:
        remove_host(host)


def test_cut_during_the_package_install_and_dpkg_killed_too(cut):
    output = cut.cut_when("pgrep -x dpkg", then="sleep 0.5; pkill -9 -x dpkg")
    last = output.rsplit("--> Starting operation: ", 1)[-1].splitlines()[0].strip()
    assert last in ("CA certificates | ca-certificates", "Docker engine | Docker packages from the distribution"), output[-2000:]
    cut.converges_and_holds()


def test_cut_during_the_upload_of_the_stack_files(cut):
    cut.remove_stack()
    cut.cut_when(f"test -d {STACK}/images")
    assert cut.sh(f"test -f {STACK}/.labhub-up || echo not up") == "not up", "cut before the stack came up"
    cut.converges_and_holds()


def test_cut_during_compose_up_and_the_hub_image_build(cut):
    cut.remove_stack(images=True)
    cut.cut_when("pgrep -f 'compose up' >/dev/null && sleep 5 && pgrep -f 'compose up'")
    cut.converges_and_holds()
