"""Drift check: is every host still what the deploy makes it?

    ./drift-check inventories/lab.py [--json F] [--junit F] [--markdown F] [--report-dir D]

For each host it compares the host with the deploy in two independent ways, at once:
  - the deploy's plan, `pyinfra INVENTORY --dry --json deploy.py`: operations that would
    change something on the host;
  - the host checks, `pytest labhub/checks --inventory INVENTORY --host HOST`: each failed check
    names the resource with what was expected and what was found.

Each host is `clean`, `drifted` (with what drifted) or `error` (unreachable, authentication
failure, a failing fact, bad data): an error is never reported as clean. Exit status: 0 when
every host is clean, 2 when any host drifted, 1 when any host is in error (error wins).
Nothing secret is reported: the checks compare credentials by digest and never show them.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from dataclasses import asdict, dataclass, field
from pathlib import Path

from labhub.local import REPO

CLEAN, DRIFTED, ERROR = "clean", "drifted", "error"
EXIT = {CLEAN: 0, DRIFTED: 2, ERROR: 1}
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass
class Finding:
    source: str  # "plan" (an operation would change) or "check" (a host check failed)
    resource: str  # what drifted: the operation, or the check's resource
    detail: str  # expected vs found, or what the operation would do
    check: str = ""  # the host check that found it: "test_backup::test_the_last_backup_succeeded_recently"


@dataclass
class HostReport:
    name: str
    status: str = CLEAN
    drift: list[Finding] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    checks_passed: int = 0

    def settle(self) -> None:
        self.status = ERROR if self.errors else DRIFTED if self.drift else CLEAN


def deploy_command(inventory: str, hosts: list[str], *options: str) -> list[str]:
    """This environment's pyinfra running deploy.py, limited to `hosts` (none: every host)."""
    limit = [arg for host in hosts for arg in ("--limit", host)]
    return [str(Path(sys.executable).parent / "pyinfra"), inventory, *options, *limit, "deploy.py"]


def run_plan(inventory: str, hosts: list[str], env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        deploy_command(inventory, hosts, "--dry", "--json"),
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )


def run_checks(inventory: str, hosts: list[str], junit: Path, names: Path, env: dict) -> subprocess.Popen:
    """One pytest for all hosts: its start-up (imports, collection) is most of its cost. It
    also writes the names of the hosts it checks (loading the inventory here as well would
    cost as much again)."""
    only = [f"--host={host}" for host in hosts]  # one token each: pytest reads "@x" as a file of arguments
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", "labhub/checks", f"--inventory={inventory}", *only, f"--names-to={names}", "-q",
         "-p", "no:cacheprovider", "-o", "addopts=", "--assert=plain", f"--junitxml={junit}"],  # checks word their own failures
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )


def read_plan(stdout: str, stderr: str, reports: dict[str, HostReport]) -> None:
    stderr = ANSI.sub("", stderr)
    ready = set(re.findall(r"\[([^\]]+)\]\s+Ready: deploy\.py", stderr))  # pyinfra pads host names
    for name, report in reports.items():
        if name not in ready:
            said = [m.group(1).strip() for m in re.finditer(rf"\[{re.escape(name)}\]\s+(.*)", stderr)]
            said = [line for line in said if line and "Ready" not in line]
            general = re.findall(r"pyinfra error: (.*(?:\n  .*)*)", stderr)
            report.errors.append("deploy plan: " + ("; ".join(said) or "; ".join(general) or "pyinfra failed before reaching this host"))
    try:
        plan = json.loads(stdout)["plan"] if stdout.strip() else []
    except (json.JSONDecodeError, KeyError):
        plan = []
    for operation in plan:
        for name in operation["hosts_with_change"]:
            if name in reports:
                reports[name].drift.append(Finding("plan", operation["name"], "the deploy would change this"))


def read_checks(output: str, junit: Path, reports: dict[str, HostReport]) -> None:
    cases = list(ElementTree.parse(junit).getroot().iter("testcase")) if junit.exists() else []
    ran = {name: 0 for name in reports}
    failed_to_run: dict[str, dict[str, list[str]]] = {name: {} for name in reports}
    for case in cases:
        host_match = re.search(r"\[(.*)\]$", case.get("name", ""))
        if not host_match or host_match.group(1) not in reports:
            continue
        report = reports[host_match.group(1)]
        ran[report.name] += 1
        name = case.get("name", "")[: host_match.start()].removeprefix("test_").replace("_", " ")
        problem = case.find("failure") if case.find("failure") is not None else case.find("error")
        if problem is None:
            report.checks_passed += case.find("skipped") is None
            continue
        message = (problem.get("message") or "").strip()
        if message.startswith("AssertionError: "):
            first = message.removeprefix("AssertionError: ").split("\n")[0]
            resource, _, detail = first.partition(": ")
            check = f"{case.get('classname', '').rsplit('.', 1)[-1]}::{case.get('name', '')[: host_match.start()]}"
            report.drift.append(Finding("check", resource, detail or name, check))
        else:  # the host could not be checked: never clean
            failed_to_run[report.name].setdefault(_reason(problem.text or message), []).append(name)
    for host, reasons in failed_to_run.items():
        for reason, names in reasons.items():
            which = f"'{names[0]}'" if len(names) == 1 else f"{len(names)} of them"
            reports[host].errors.append(f"host checks could not run ({which}): {reason}")
    for host, count in ran.items():
        if count == 0:
            reports[host].errors.append("host checks did not run: " + output.strip()[-500:])


def _reason(message: str) -> str:
    """Why a check could not run, in one line: ssh's own words when it is ssh that failed."""
    stderr = re.search(r"_stderr=b['\"](.*?)(?:\\r)?\\n", message)
    first = stderr.group(1) if stderr else (message.splitlines()[0] if message else "error")
    return first[:300]


def check(inventory: str, hosts: list[str] | None = None) -> dict[str, HostReport]:
    """Run the plan and the checks of every host at once; a report per host."""
    env = {**os.environ, "PYINFRA_PROGRESS": "off"}
    with tempfile.TemporaryDirectory() as scratch:
        junit, names_file = Path(scratch) / "checks.xml", Path(scratch) / "hosts"
        plan = run_plan(inventory, hosts or [], env)
        checks = run_checks(inventory, hosts or [], junit, names_file, env)
        planned = plan.communicate()  # then the checks: a process whose output fills its pipe meanwhile only waits
        output, _ = checks.communicate()
        names = hosts or (names_file.read_text().split() if names_file.exists() else None)
        if names is None:  # the checks could not load the inventory: loaded here, its error raised as the deploy's would be
            from labhub.inventory import load_inventory

            names = [name for name, _ in load_inventory(inventory)]
        reports = {name: HostReport(name) for name in names}
        read_plan(*planned, reports)
        read_checks(output, junit, reports)
    for report in reports.values():
        report.settle()
    return reports


def overall(reports: dict[str, HostReport]) -> str:
    statuses = {report.status for report in reports.values()}
    return ERROR if ERROR in statuses else DRIFTED if DRIFTED in statuses else CLEAN


def summary(inventory: str, reports: dict[str, HostReport], seconds: float) -> str:
    lines = [f"drift check of {inventory}: {overall(reports).upper()} ({len(reports)} hosts, {seconds:.1f} s)"]
    for report in reports.values():
        lines.append(f"  {report.name}: {report.status}")
        lines += [f"    error: {error}" for error in report.errors]
        lines += [f"    drifted: {f.resource}: {f.detail}" for f in report.drift]
    return "\n".join(lines)


def as_json(inventory: str, reports: dict[str, HostReport], started: str, seconds: float) -> str:
    return json.dumps(
        {
            "inventory": inventory,
            "started": started,
            "seconds": round(seconds, 2),
            "status": overall(reports),
            "hosts": {name: asdict(report) for name, report in reports.items()},
        },
        indent=2,
    )


def as_junit(reports: dict[str, HostReport], seconds: float) -> str:
    suites = ElementTree.Element("testsuites", name="labhub drift check", time=f"{seconds:.2f}")
    for report in reports.values():
        suite = ElementTree.SubElement(suites, "testsuite", name=report.name, tests=str(report.checks_passed + len(report.drift) + len(report.errors)),
                                       failures=str(len(report.drift)), errors=str(len(report.errors)))
        for finding in report.drift:
            case = ElementTree.SubElement(suite, "testcase", classname=f"{report.name}.{finding.source}", name=finding.resource)
            ElementTree.SubElement(case, "failure", message=f"{finding.resource}: {finding.detail}")
        for error in report.errors:
            case = ElementTree.SubElement(suite, "testcase", classname=f"{report.name}.error", name=error[:80])
            ElementTree.SubElement(case, "error", message=error)
        if report.status == CLEAN:
            ElementTree.SubElement(suite, "testcase", classname=f"{report.name}.clean", name=f"{report.checks_passed} checks and the deploy plan")
    return ElementTree.tostring(suites, encoding="unicode")


def as_markdown(inventory: str, reports: dict[str, HostReport], started: str) -> str:
    icon = {CLEAN: "clean", DRIFTED: "**drifted**", ERROR: "**error**"}
    lines = [f"# Drift check: {overall(reports)}", "", f"`{inventory}`, {started}", "", "| host | status | findings |", "|---|---|---|"]
    for report in reports.values():
        lines.append(f"| {report.name} | {icon[report.status]} | {len(report.drift) + len(report.errors)} |")
    for report in reports.values():
        if report.status != CLEAN:
            lines += ["", f"## {report.name}", ""]
            lines += [f"- error: {error}" for error in report.errors]
            lines += [f"- `{f.resource}`: {f.detail} ({'host check' if f.source == 'check' else 'deploy plan'})" for f in report.drift]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="drift-check", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inventory", help="pyinfra inventory file, e.g. inventories/lab.py")
    parser.add_argument("--host", action="append", help="check only this host (repeatable)")
    parser.add_argument("--json", help="write the JSON report here")
    parser.add_argument("--junit", help="write the JUnit XML report here")
    parser.add_argument("--markdown", help="write the Markdown report here")
    parser.add_argument("--report-dir", help="write drift.json, drift.xml and drift.md into this directory")
    parser.add_argument("--converge", action="store_true", help="after reporting, run the deploy on drifted hosts (off by default)")
    parser.add_argument("--alerts", metavar="FILE", help="send alerts and heartbeats with these settings (the control host's, written by the deploy)")
    parser.add_argument("--test-alerts", action="store_true", help="send a test message through every alert target and say whether each was delivered")
    args = parser.parse_args(argv)
    if args.alerts or args.test_alerts:  # the alerts' settings model: imported only when there are alerts
        from labhub import alerts

        settings = alerts.load_settings(args.alerts, args.inventory)
        if args.test_alerts:
            return alerts.test(settings)
        print(alerts.ping_job(settings, "start"), end="", flush=True)

    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    clock = time.monotonic()
    reports = check(args.inventory, args.host)
    seconds = time.monotonic() - clock

    outputs = {"json": args.json, "junit": args.junit, "markdown": args.markdown}
    if args.report_dir:
        directory = Path(args.report_dir)
        directory.mkdir(parents=True, exist_ok=True)
        outputs = {kind: outputs[kind] or str(directory / name) for kind, name in (("json", "drift.json"), ("junit", "drift.xml"), ("markdown", "drift.md"))}
    writers = {
        "json": lambda: as_json(args.inventory, reports, started, seconds),
        "junit": lambda: as_junit(reports, seconds),
        "markdown": lambda: as_markdown(args.inventory, reports, started),
    }
    for kind, path in outputs.items():
        if path:
            Path(path).write_text(writers[kind]())
    print(summary(args.inventory, reports, seconds), flush=True)

    drifted = [name for name, report in reports.items() if report.status == DRIFTED]
    converge_failed = []
    if args.converge and drifted:
        converge = subprocess.run(deploy_command(args.inventory, drifted, "-y"), cwd=REPO)
        print(f"re-converged {', '.join(drifted)}: {'done' if converge.returncode == 0 else 'FAILED'}")
        converge_failed = drifted if converge.returncode != 0 else []
    status = EXIT[overall(reports)]
    if args.alerts:
        for line in alerts.raise_alerts(settings, alerts.conditions(reports, converge_failed), outputs["markdown"]):
            print(line, flush=True)
        print(alerts.ping_job(settings, "fail" if status == EXIT[ERROR] else "success"), end="", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
