"""The local sandbox host that `python -m tests.sandbox up` starts (its lab: group_data/sandbox.py)."""

import json
from pathlib import Path

_connection = Path(__file__).resolve().parent.parent / ".sandbox" / "connection.json"
if not _connection.exists():
    raise SystemExit("no sandbox is running: start one with `python -m tests.sandbox up`")

sandbox = [("sandbox", json.loads(_connection.read_text()))]
