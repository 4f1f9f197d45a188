"""`python -m tests.benchmark SECTION...`: run each section and record its table."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from tests.benchmark import __doc__ as USAGE
from tests.benchmark import backup, class_start, drift, host_layer, hub, lab_page, login_flood, quotas, suite, swarm
from tests.benchmark.common import record

SECTIONS = {
    "host-layer": host_layer.host_layer,
    "drift": drift.drift,
    "hub": hub.hub,
    "class-start": class_start.class_start,
    "login-flood": login_flood.login_flood,
    "backup": backup.backup,
    "quotas": quotas.quotas,
    "lab-page": lab_page.lab_page,
    "swarm": swarm.swarm,
    "suite": suite.suite,
}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmark", description=USAGE, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sections", nargs="+", choices=sorted(SECTIONS))
    args = parser.parse_args()
    for section in args.sections:
        with tempfile.TemporaryDirectory() as workdir:
            text = SECTIONS[section](Path(workdir))
        print(text)
        record(section, text)


if __name__ == "__main__":
    main()
