"""Room on the disks the lab fills: each filesystem that holds the members' homes, Docker's
data (images, the registry, the hub's database) or the backup's staging is at most
alerts.disk_percent full (85% by default); one that is fuller is named with its largest
homes, the first place to look. With quotas: every home and group folder has its own project
with the limit data gives it, and none uses more than alerts.quota_percent of it (95%), read
from the quota report, not by walking the files. (What members' servers write outside their
homes: test_hub.py.)"""

from labhub.config.disk import quotas_on
from labhub.ops.quotas import DiskState, filesystem_of
from labhub.ops.shell import q
from tasks.backup import STATE_DIR
from tasks.disk import group_folders, quota_directories

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
    if quotas_on(target.config):
        used = sorted(((u, path) for path, u, _ in quota_use(target)), reverse=True)[:LARGEST]
        largest = ", ".join(f"{path.rsplit('/', 1)[-1]} {u / 1024 / 1024:.1f} GiB" for u, path in used)
    else:
        homes = target.read(f"du -sk /home/jupyter-* 2>/dev/null | sort -rn | head -n {LARGEST}; true").splitlines()
        largest = ", ".join(f"{line.split()[1].rsplit('/', 1)[-1]} {int(line.split()[0]) / 1024 / 1024:.1f} GiB" for line in homes if len(line.split()) == 2)
    mount, (percent, size, used) = max(full.items(), key=lambda item: item[1][0])
    raise AssertionError(
        f"filesystem {mount}: expected at most {limit}% used (alerts.disk_percent), found {percent}% ({used} of {size} GiB); "
        f"the largest homes: {largest or 'none'}"
    )


def disk_state(target) -> dict:
    fact = DiskState()
    return fact.process(target.read(fact.command(group_folders(target.config))).splitlines())


def quota_use(target) -> list[tuple[str, int, int]]:
    """(directory, KiB used, KiB limit) of each home and group folder in its own project."""
    state, use = disk_state(target), []
    for directory in quota_directories(target.config):
        now = state["directories"].get(directory.path)
        if now and now["project"] is not None:
            found = state["limits"].get((filesystem_of(state, directory.path).get("target"), now["project"]))
            if found:
                use.append((directory.path, found["used_kib"], found["limit_kib"]))
    return use


def mib(kib: int) -> str:
    return f"{kib / 1024:.0f} MiB" if kib else "no limit"


def test_homes_and_group_folders_have_their_quotas(target):
    if not quotas_on(target.config):
        return
    state, wrong = disk_state(target), []
    for directory in quota_directories(target.config):
        found = directory.found(state)
        if found is None:
            wrong.append(f"{directory.path}: missing")
        elif found["project"] != found["own_project"] or not found["inherit"]:
            wrong.append(f"{directory.path}: expected its own project {found['own_project']} (inherited by new files), found project "
                         f"{found['project']}{'' if found['inherit'] else ' without inheritance'}")
        elif found["limit_kib"] != directory.limit_kib:
            wrong.append(f"{directory.path}: expected a quota of {mib(directory.limit_kib)}, found {mib(found['limit_kib'])}")
    assert not wrong, "; ".join(wrong) + " (the next deploy sets them as data says)"


def test_no_home_or_group_folder_is_nearly_at_its_quota(target):
    if not quotas_on(target.config):
        return
    percent = target.config.alerts.quota_percent
    full = [(used * 100 // limit, path, used, limit) for path, used, limit in quota_use(target) if limit and used * 100 > limit * percent]
    assert not full, "; ".join(
        f"{path}: {share}% of its quota used ({mib(used)} of {mib(limit)}; alerts.quota_percent is {percent})" for share, path, used, limit in sorted(full, reverse=True)
    )
