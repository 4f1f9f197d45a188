"""What files/login_guard.py records in the hub's log: a burst of failed logins within a day is
a finding, and so, through the nightly drift check, an alert, naming whom they guessed and
from where (never a password: the log has none)."""

from collections import Counter
import re

from labhub.checks.test_hub import stack_of

FAILED = re.compile(r"Failed login for '([^']*)' from (\S+)")


def test_no_burst_of_failed_logins_in_the_last_day(target):
    stack_of(target)
    limit = target.config.hub.login.alert_failures
    log = target.run("docker logs --since 24h jupyterhub-hub-1 2>&1 | grep -F 'Failed login for ' || true").stdout
    failures = Counter(FAILED.findall(log))
    total = sum(failures.values())
    most = ", ".join(f"{name!r} from {address} ({count})" for (name, address), count in failures.most_common(3))
    assert total < limit, f"failed logins: expected fewer than {limit} in 24 h (hub.login.alert_failures), found {total}; most: {most}"
