"""The drift check on converged test hosts: each kind of drift, injected one at a time, is
detected and named (expected vs found) with exit status 2; after the deploy runs again the
check is clean (exit 0). A stopped host is an error (exit 1), named, never clean; with three
hosts and one drifted, only that one is reported. And the nightly unit, installed by the
deploy on a control host, runs the check and keeps its reports."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ElementTree

import pytest

from tests.harness import cli
from tests.harness.hosts import remove_host, start_host, write_inventory
from tests.harness.lab import SHARE_CREDENTIALS

pytestmark = pytest.mark.host


def drift_of(inventory, host: str, workdir) -> tuple[cli.Run, dict]:
    run = cli.drift_check(inventory, "--host", host, "--report-dir", str(workdir))
    return run, json.loads((workdir / "drift.json").read_text())["hosts"][host]


def converge(inventory, host: str) -> None:
    cli.converge(inventory, "--limit", host)


# (case, host, how a person changes the host, the host check that must name it, an operation of the plan)
LAB_DRIFT = [
    ("docker-member-added", "gpasswd --add mallory docker", "group docker (root-equivalent)", "Users | admins, jupyter-* accounts, docker group"),
    ("docker-member-removed", "gpasswd --delete opsadmin docker", "group docker (root-equivalent)", "Users | admins, jupyter-* accounts, docker group"),
    ("hub-user-deleted", "userdel jupyter-bob", "account jupyter-bob", "Users | admins, jupyter-* accounts, docker group"),
    ("departed-user-unlocked", "usermod --expiredate '' --shell /bin/bash jupyter-olduser && echo 'jupyter-olduser:Unlock3d-pw' | chpasswd",
     "departed account jupyter-olduser", "Users | admins, jupyter-* accounts, docker group"),
    ("daemon-json-edited", "sed -i 's/10m/99m/' /etc/docker/daemon.json", "/etc/docker/daemon.json", "Docker engine | daemon.json"),
    ("credentials-mode-0644", "chmod 644 /etc/labhub/credentials/data", "/etc/labhub/credentials/data", "Shares | Credentials files and mount points"),
    ("fstab-line-edited", "sed -i 's# /mnt/data cifs # /mnt/data2 cifs #' /etc/fstab", "/etc/fstab share lines", "Shares | fstab lines of the shares"),
    ("fstab-line-removed", "sed -i '\\#//files.example.org/analysis#d' /etc/fstab", "/etc/fstab share lines", "Shares | fstab lines of the shares"),
    ("package-removed", "DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq cifs-utils >/dev/null", "package cifs-utils", "Shares | cifs-utils"),
]


@pytest.mark.parametrize("case, change, resource, operation", LAB_DRIFT, ids=[case[0] for case in LAB_DRIFT])
def test_each_kind_of_drift_is_named_and_a_deploy_clears_it(lab, tmp_path, case, change, resource, operation):
    host = lab.hosts["lab-distro"]
    host.exec(change)
    run, report = drift_of(lab.inventory, host.name, tmp_path)
    assert run.returncode == 2, run.explain()
    assert report["status"] == "drifted"
    checks = {finding["resource"] for finding in report["drift"] if finding["source"] == "check"}
    assert checks == {resource}, f"exactly the changed resource is named: {report['drift']}"
    assert operation in {finding["resource"] for finding in report["drift"] if finding["source"] == "plan"}
    assert f"drifted: {resource}: expected" in run.stdout
    for _, password in SHARE_CREDENTIALS.values():
        assert password not in run.output and password not in (tmp_path / "drift.json").read_text()

    converge(lab.inventory, host.name)
    run, report = drift_of(lab.inventory, host.name, tmp_path)
    assert (run.returncode, report["status"], report["drift"]) == (0, "clean", []), run.explain()


HUB_DRIFT = [
    ("stack-file-edited", "echo '# edited by hand' >> /opt/jupyterhub/compose.yaml", "/opt/jupyterhub/compose.yaml", "JupyterHub | Stack files"),
    ("hub-stopped", "docker stop jupyterhub-hub-1 >/dev/null", "container jupyterhub-hub-1", "JupyterHub | Hub and registry up and answering"),
]


@pytest.mark.hub
@pytest.mark.parametrize("case, change, resource, operation", HUB_DRIFT, ids=[case[0] for case in HUB_DRIFT])
def test_drift_of_the_hub_stack_is_named_and_a_deploy_clears_it(hub_lab, tmp_path, case, change, resource, operation):
    hub_lab.host.exec(change)
    run, report = drift_of(hub_lab.inventory, hub_lab.host.name, tmp_path)
    assert run.returncode == 2, run.explain()
    assert {f["resource"] for f in report["drift"] if f["source"] == "check"} == {resource}, report["drift"]
    assert operation in {f["resource"] for f in report["drift"] if f["source"] == "plan"}
    converge(hub_lab.inventory, hub_lab.host.name)
    run, report = drift_of(hub_lab.inventory, hub_lab.host.name, tmp_path)
    assert (run.returncode, report["status"]) == (0, "clean"), run.explain()


def test_with_three_hosts_only_the_drifted_one_is_reported_in_every_format(lab, tmp_path):
    lab.hosts["lab-official"].exec("sed -i 's/10m/11m/' /etc/docker/daemon.json")
    run = cli.drift_check(lab.inventory, "--json", str(tmp_path / "r.json"), "--junit", str(tmp_path / "r.xml"), "--markdown", str(tmp_path / "r.md"))
    assert run.returncode == 2, run.explain()
    report = json.loads((tmp_path / "r.json").read_text())
    assert {name: host["status"] for name, host in report["hosts"].items()} == {
        "lab-distro": "clean", "lab-official": "drifted", "lab-mirror": "clean"}
    assert report["status"] == "drifted"
    suites = {suite.get("name"): suite for suite in ElementTree.parse(tmp_path / "r.xml").getroot()}
    assert suites["lab-official"].get("failures") != "0" and suites["lab-distro"].get("failures") == "0"
    markdown = (tmp_path / "r.md").read_text()
    assert "| lab-official | **drifted** |" in markdown and "| lab-distro | clean |" in markdown
    assert "`/etc/docker/daemon.json`: expected" in markdown
    converge(lab.inventory, "lab-official")
    assert cli.drift_check(lab.inventory).returncode == 0


def test_the_converge_option_re_runs_the_deploy_on_drifted_hosts(lab, tmp_path):
    host = lab.hosts["lab-distro"]
    host.exec("gpasswd --add mallory docker >/dev/null")
    run = cli.drift_check(lab.inventory, "--host", host.name, "--converge")
    assert run.returncode == 2, "the report still says what had drifted"
    assert "re-converged lab-distro: done" in run.stdout, run.explain()
    assert host.exec("getent group docker").stdout.strip().endswith(":labadmin,opsadmin")
    assert cli.drift_check(lab.inventory, "--host", host.name).returncode == 0


def test_a_host_that_is_down_is_an_error_never_clean(lab, tmp_path, testhost_image, ssh_key):
    down = start_host("lab-down", testhost_image, ssh_key)
    try:
        inventory = write_inventory(tmp_path / "with_down.py", [(down, {"hub": {"enabled": False}, "docker": {"source": "distro"}})])
        down.stop()
        run = cli.drift_check(inventory, "--json", str(tmp_path / "r.json"))
    finally:
        remove_host(down)
    assert run.returncode == 1, run.explain()
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["status"] == "error" and report["hosts"]["lab-down"]["status"] == "error"
    assert "lab-down: error" in run.stdout and "Could not connect" in run.stdout


def test_an_error_wins_over_drift(lab, tmp_path, testhost_image, ssh_key):
    down = start_host("lab-down2", testhost_image, ssh_key)
    try:
        down.stop()
        lab.hosts["lab-mirror"].exec("sed -i 's/50m/51m/' /etc/docker/daemon.json")
        hosts = [(lab.hosts[name], data) for name, data in lab.data.items()]
        inventory = write_inventory(tmp_path / "mixed.py", [*hosts, (down, {"hub": {"enabled": False}})])
        (tmp_path / "mixed.secrets.toml").write_bytes((lab.inventory.parent / "lab_hosts.secrets.toml").read_bytes())
        (tmp_path / "mixed.secrets.toml").chmod(0o600)
        run = cli.drift_check(inventory, "--json", str(tmp_path / "r.json"))
    finally:
        remove_host(down)
        converge(lab.inventory, "lab-mirror")
    statuses = {name: host["status"] for name, host in json.loads((tmp_path / "r.json").read_text())["hosts"].items()}
    assert statuses == {"lab-distro": "clean", "lab-official": "clean", "lab-mirror": "drifted", "lab-down2": "error"}
    assert run.returncode == 1, run.explain()


def test_the_nightly_unit_runs_the_check_on_a_control_host_and_keeps_its_reports(tmp_path, testhost_image, ssh_key):
    """A lab server that checks itself: the deploy installs the project, its virtualenv and a
    systemd timer; the service's run lands in the journal and in a report directory."""
    from tests.harness.hublab import RUNNER_CA_DIRECTORY

    runner_cas = sorted(RUNNER_CA_DIRECTORY.glob("*.crt"))
    lab_data = {"hub": {"enabled": False}, "docker": {"source": "distro"}, "admins": ["labadmin"], "users": ["alice"]}
    # What the control host checks: itself, with the CA copies the deploy installed there.
    nightly = tmp_path / "nightly_hosts.py"
    installed_cas = [f"/usr/local/share/ca-certificates/labhub/{ca.stem}.crt" for ca in runner_cas]
    nightly_data = {**lab_data, "extra_ca_certificates": installed_cas,
                    "drift": {"enabled": True, "inventory": "inventories/nightly_hosts.py", "keep_days": 14}}
    nightly.write_text(f"nightly = [('@local', {nightly_data!r})]\n")

    control = start_host("control", testhost_image, ssh_key)
    try:
        data = {**lab_data, "extra_ca_certificates": [str(ca) for ca in runner_cas],
                "drift": {"enabled": True, "inventory": str(nightly), "keep_days": 14}}
        inventory = write_inventory(tmp_path / "control_hosts.py", [(control, data)])
        changed = cli.changed_operations(cli.converge(inventory))["control"]
        assert "Drift check | Timer enabled and waiting" in changed
        assert cli.changed_operations(cli.converge(inventory)) == {}, "idempotent, the control host's own setup included"

        assert control.ssh("systemctl is-enabled labhub-drift.timer; systemctl is-active labhub-drift.timer").stdout.split() == ["enabled", "active"]
        assert "labhub-drift.timer" in control.ssh("systemctl list-timers --all --no-pager").stdout

        clean = control.ssh("systemctl start labhub-drift.service", check=False)
        journal = control.ssh("journalctl -u labhub-drift --no-pager -o cat").stdout
        assert clean.returncode == 0, journal
        assert "drift check of inventories/nightly_hosts.py: CLEAN" in journal
        reports = control.ssh("ls /var/lib/labhub/drift").stdout.split()
        assert len(reports) == 1
        assert json.loads(control.ssh(f"cat /var/lib/labhub/drift/{reports[0]}/drift.json").stdout)["status"] == "clean"

        control.ssh("useradd mallory && gpasswd --add mallory docker >/dev/null")
        drifted = control.ssh("systemctl start labhub-drift.service", check=False)
        assert drifted.returncode != 0, "a drifted host leaves the unit failed, for monitoring to see"
        assert control.ssh("systemctl show labhub-drift.service -p Result --value").stdout.strip() == "exit-code"
        journal = control.ssh("journalctl -u labhub-drift --no-pager -o cat").stdout
        assert "drifted: group docker (root-equivalent): expected members ['labadmin'], found ['labadmin', 'mallory']" in journal

        control.ssh("mkdir /var/lib/labhub/drift/2020-01-01T033000 && touch -d '20 days ago' /var/lib/labhub/drift/2020-01-01T033000")
        control.ssh("gpasswd --delete mallory docker >/dev/null")
        assert control.ssh("systemctl start labhub-drift.service", check=False).returncode == 0
        kept = control.ssh("ls /var/lib/labhub/drift").stdout.split()
        assert "2020-01-01T033000" not in kept and len(kept) == 3, f"reports older than 14 days are removed: {kept}"
    finally:
        remove_host(control)
