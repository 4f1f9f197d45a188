"""Quotas and the homes' disk in data, checked before any host is touched, and what the
deploy reads back from a host (the disk fact's parsing, with output captured on the VM):
no host needed. Quotas on a real kernel are in test_vm_quotas.py."""

from __future__ import annotations

import pytest

from labhub.config.disk import GROUP_PROJECT_BASE
from labhub.inventory import ConfigError, validate_host_data
from labhub.ops.quotas import DiskState, QuotaDirectory, filesystem_of, has_project_quotas, homes_device_contents

pytestmark = pytest.mark.quick

HOMES_SHARE = {"name": "homes", "server": "files.example.org", "share": "homes", "mount_point": "/home", "homes": True}


def problems(data: dict) -> str:
    with pytest.raises(ConfigError) as error:
        validate_host_data("lab1", {"users": ["alice"], **data})
    return str(error.value)


@pytest.mark.parametrize(
    "data, expected",
    [
        ({"hub": {"home_quota": "20"}}, "hub.home_quota = '20' (str): must be a size such as '500M', '20G' or '1.5T'"),
        ({"hub": {"home_quota": "100K"}}, "must be at least 1M"),
        ({"users": [{"name": "alice", "home_quota": "lots"}]}, "must be a size such as"),
        ({"groups": [{"name": "optics", "quota": "1 T"}]}, "must be a size such as"),
        ({"hub": {"homes_device": "sdb"}}, "hub.homes_device = 'sdb' (str): must be a block device or logical volume under /dev"),
        ({"hub": {"homes_device": "/dev/../etc/passwd"}}, "must be a block device"),
        ({"hub": {"home_quota": "20G"}, "shares": [{"name": "data", "server": "f.example.org", "share": "data", "mount_point": "/mnt/data"}],
          "groups": [{"name": "optics", "folder": "/mnt/data/optics", "quota": "1T"}]},
         "groups[0] (optics): quota: its folder /mnt/data/optics is on share 'data'"),
    ],
)
def test_bad_quota_data_is_refused_with_the_field_and_what_to_write(data, expected):
    assert expected in problems(data)


def test_quotas_on_a_swarm_labs_homes_share_are_refused(monkeypatch):
    monkeypatch.setenv("LABHUB_SHARE_HOMES_USERNAME", "lab")
    monkeypatch.setenv("LABHUB_SHARE_HOMES_PASSWORD", "Homes-Pw-1")
    data = {"users": [{"name": "alice", "uid": 1001}], "admins": [{"name": "labadmin", "uid": 1900}], "hub": {"home_quota": "20G"},
            "shares": [HOMES_SHARE], "swarm": {"role": "worker", "advertise_address": "10.1.2.10"}}
    assert "the homes are on share 'homes', whose file server keeps its own quotas" in problems(data)


# Captured from the VM (Debian 13, /home on an XFS disk mounted with prjquota).
VM_OUTPUT = [
    "M\t/ /dev/vda ext4 rw,relatime,errors=remount-ro",
    "M\t/home /dev/vdb xfs rw,relatime,attr2,inode64,logbufs=8,logbsize=32k,prjquota",
    "A\t/home/jupyter-alice\t1000:100",
    "A\t/srv/groups/optics\t0:3001",
    "P\t1000 -------------------P-- /home/jupyter-alice",
    "P\t0 ---------------------- /srv/groups/optics",
    "Q\t/home\t0\t0\t0",
    "Q\t/home\t1000\t16\t20480",
    "D\tblock\t/dev/vdb\tLABEL=labhub-homes TYPE=xfs \t1",
    "H\t/dev/vdb\t1",
]


def test_the_disk_fact_reads_filesystems_projects_limits_and_the_device():
    state = DiskState().process(VM_OUTPUT)
    assert filesystem_of(state, "/home/jupyter-alice")["source"] == "/dev/vdb"
    assert filesystem_of(state, "/srv/groups/optics")["target"] == "/"
    assert has_project_quotas(filesystem_of(state, "/home/jupyter-alice")) and not has_project_quotas(filesystem_of(state, "/srv"))
    assert state["directories"]["/home/jupyter-alice"] == {"owner": "1000:100", "project": 1000, "inherit": True}
    assert QuotaDirectory("/home/jupyter-alice", 20480, "owner").as_set(state)
    assert not QuotaDirectory("/home/jupyter-alice", 40960, "owner").as_set(state), "another limit"
    assert QuotaDirectory("/srv/groups/optics", 0, str(GROUP_PROJECT_BASE)).project("0:3001") == GROUP_PROJECT_BASE + 3001
    assert not QuotaDirectory("/srv/groups/optics", 0, str(GROUP_PROJECT_BASE)).as_set(state), "not in its own project"
    assert not QuotaDirectory("/home/jupyter-bob", 20480, "owner").as_set(state), "not made yet"
    assert (state["homes_source"], state["fstab"]) == ("/dev/vdb", True)
    assert homes_device_contents(state["device"]) is None, "the disk labhub made is not refused"


@pytest.mark.parametrize(
    "found, partitions, expected",
    [
        ({}, 0, None),
        ({"TYPE": "ext4", "LABEL": "old-data"}, 0, "a filesystem (ext4, label 'old-data')"),
        ({"TYPE": "xfs"}, 0, "a filesystem (xfs)"),
        ({"PTTYPE": "gpt"}, 2, "a partition table (gpt, 2 partition(s))"),
        ({"TYPE": "LVM2_member"}, 0, "a filesystem (LVM2_member)"),
    ],
)
def test_a_device_that_holds_anything_is_named_with_what_it_holds(found, partitions, expected):
    assert homes_device_contents({"found": found, "partitions": partitions}) == expected
