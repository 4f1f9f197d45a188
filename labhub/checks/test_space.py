"""Room on the disks the lab fills: each filesystem that holds the members' homes, Docker's
data (images, the registry, the hub's database) or the backup's staging is at most
alerts.disk_percent full (85% by default); one that is fuller is named with its largest
homes, the first place to look. (What members' servers write outside their homes: test_hub.py.)"""

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
