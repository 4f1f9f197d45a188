"""The machine's CPU time so far, from /proc/stat: what the suite's ledger and the benchmarks
compare over a span to say how busy the cores were."""

from __future__ import annotations

import os
from pathlib import Path


def cpu_ticks() -> tuple[int, int]:
    """(busy, all) CPU time of the whole machine, all cores, in clock ticks. Busy: user, nice,
    system, irq, softirq and steal; idle and iowait are not."""
    user, nice, system, idle, iowait, irq, softirq, steal = (int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9])
    busy = user + nice + system + irq + softirq + steal
    return busy, busy + idle + iowait


def busy_cpu_seconds() -> float:
    return cpu_ticks()[0] / os.sysconf("SC_CLK_TCK")
