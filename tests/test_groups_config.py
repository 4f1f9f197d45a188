"""Research groups in data, checked before any host is touched, and the host steps they
plan: no host needed. What members' servers get is in test_hub_config.py; the groups on a
real host are in test_groups.py."""

from __future__ import annotations

import pytest

from labhub.inventory import ConfigError, validate_host_data

pytestmark = pytest.mark.quick

USERS = ["alice", "bob"]


def problems(data: dict) -> str:
    with pytest.raises(ConfigError) as error:
        validate_host_data("lab1", {"users": USERS, **data})
    return str(error.value)


@pytest.mark.parametrize(
    "groups, expected",
    [
        ([{"name": "optics", "members": ["mallory"]}], "member 'mallory' is not in users"),
        ([{"name": "optics", "members": ["alice", "alice"]}], "a member is listed twice"),
        ([{"name": "Optics"}], "a group name must be lower-case"),
        ([{"name": "a-group-name-longer-than-28-chars"}], "at most 28 characters"),
        ([{"name": "optics"}, {"name": "optics"}], "duplicate name 'optics'"),
        ([{"name": "optics", "gid": 3001}, {"name": "theory", "gid": 3001}], "duplicate UID 3001"),
        ([{"name": "optics", "folder": "/srv/lab"}, {"name": "theory", "folder": "/srv/lab/theory"}], "inside groups[0]'s /srv/lab"),
        ([{"name": "optics", "folder": "/home/optics"}], "must not be under /home"),
        ([{"name": "optics", "folder": "/srv"}], "is a system directory"),
        ([{"name": "optics", "folder": "/srv/my folder"}], "normalised absolute path"),
        ([{"name": "optics", "folder": "/mnt/data"}], "would hold share 'data' (/mnt/data)"),
        ([{"name": "optics", "folder": "/mnt/data/optics"}], "is on share 'data', which is mounted read-only"),
        ([{"name": "optics", "folder": "/opt/jupyterhub/optics"}], "inside hub.stack_dir"),
        ([{"name": "optics", "images": [{"name": "notebook"}]}], "image 'notebook' is also in hub.images"),
        ([{"name": "optics", "mem_limit": "lots"}], "must be a size such as"),
        ([{"name": "optics", "gpus": 0}], "a number of GPUs (1-64) or 'all'"),
        ([{"name": "optics", "gpus": 1}], "asks for GPUs, but this host is not marked as having any: set nvidia_gpus: true"),
        ([{"name": "optics", "images": [{"name": "cuda", "gpus": "all"}]}], "image 'cuda' asks for GPUs"),
    ],
)
def test_bad_groups_are_refused_naming_the_group_and_the_fix(groups, expected, monkeypatch):
    monkeypatch.setenv("LABHUB_SHARE_DATA_USERNAME", "reader")
    monkeypatch.setenv("LABHUB_SHARE_DATA_PASSWORD", "Share-Pw-1!")
    share = {"name": "data", "server": "fs1", "share": "data", "mount_point": "/mnt/data", "read_only": True}
    assert expected in problems({"shares": [share], "groups": groups})


def test_a_gpu_request_is_accepted_on_a_host_marked_as_having_gpus():
    config = validate_host_data("lab1", {"users": USERS, "nvidia_gpus": True, "groups": [{"name": "optics", "members": ["alice"], "gpus": 2}]})
    assert config.groups[0].gpus == 2 and config.groups[0].path == "/srv/groups/optics" and config.groups[0].host_group == "lab-optics"
