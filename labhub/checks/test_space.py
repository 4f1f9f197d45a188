"""Room on the disks the lab fills: each filesystem that holds the members' homes, Docker's
data (images, the registry, the hub's database) or the backup's staging is at most
alerts.disk_percent full (85% by default); one that is fuller is named with its largest
homes, the first place to look. And what members' servers write outside their homes: /tmp
is a bounded tmpfs (test_hub.py), the container's writable layer is measured here."""

import json

import pytest

from labhub.config.hub import memory_bytes
from labhub.ops.shell import q
from tasks.backup import STATE_DIR

LARGEST = 3  # homes named when a filesystem is too full


def watched_paths(config) -> list[str]:
    return ["/home", "/var/lib/docker", *([STATE_DIR] if config.backup.enabled else [])]


def test_the_labs_filesystems_have_room(target):
    limit = target.config.alerts.disk_percent
    paths = " ".join(q(path) for path in watched_paths(target.config))
    # df of each path that exists; the same filesystem once (its mount point names it)
    rows = {}
    for line in target.read(f"for p in {paths}; do [ -e \"$p\" ] && df -P \"$p\" | tail -n 1; done; true").splitlines():
        fields = line.split()
        if len(fields) >= 6:
            rows[fields[5]] = (int(fields[4].rstrip("%")), int(fields[1]) // 1024 // 1024, int(fields[2]) // 1024 // 1024)
    full = {mount: row for mount, row in rows.items() if row[0] > limit}
    if not full:
        return
    homes = target.read(f"du -sk /home/jupyter-* 2>/dev/null | sort -rn | head -n {LARGEST}; true").splitlines()
    largest = ", ".join(f"{line.split()[1].rsplit('/', 1)[-1]} {int(line.split()[0]) / 1024 / 1024:.1f} GiB" for line in homes if len(line.split()) == 2)
    mount, (percent, size, used) = max(full.items(), key=lambda item: item[1][0])
    raise AssertionError(
        f"filesystem {mount}: expected at most {limit}% used (alerts.disk_percent), found {percent}% ({used} of {size} GiB); "
        f"the largest homes: {largest or 'none'}"
    )


def test_members_servers_write_little_outside_their_homes(target):
    """A server's writable layer is on the host's disk, beside Docker's data: the engine's own
    measure of it (SizeRw), per running server, against hub.server_layer_limit."""
    if not target.config.hub.enabled:
        pytest.skip(f"{target.name} runs no hub (hub.enabled: False)")
    limit = memory_bytes(target.config.hub.server_layer_limit)
    listing = target.read("curl -sf --unix-socket /var/run/docker.sock "
                          "'http://docker/containers/json?size=1&filters=%7B%22name%22%3A%5B%22%5Ejupyter-%22%5D%7D'")
    over = sorted(((container.get("SizeRw") or 0, container["Names"][0].lstrip("/")) for container in json.loads(listing or "[]")
                   if (container.get("SizeRw") or 0) > limit), reverse=True)
    assert not over, (
        f"members' servers: expected at most {target.config.hub.server_layer_limit} written outside the home (hub.server_layer_limit), found "
        + ", ".join(f"{name} {size / 1024**2:.0f} MiB" for size, name in over)
        + " (docker diff <name> lists the files; a restart of the server discards them)"
    )
