"""The registry's retention rules (files/labhub-registry-prune), without a host: which tags
stay and which go. The host test (tests/test_hub.py) runs the script against a real registry,
its deletions and its garbage collection."""

from __future__ import annotations

import importlib.machinery
import importlib.util

import pytest

from labhub.local import REPO

pytestmark = pytest.mark.quick


def prune_module():
    loader = importlib.machinery.SourceFileLoader("labhub_registry_prune", str(REPO / "files" / "labhub-registry-prune"))
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader(loader.name, loader))
    loader.exec_module(module)
    return module


prune = prune_module()


def image(tag: str, second: int, digest: str | None = None, fraction: str = "") -> tuple[str, str, str]:
    return tag, digest or f"sha256:{tag}", f"2026-11-0{second}T10:00:0{second}{fraction}Z"


def test_the_newest_stay_and_the_older_go():
    images = [image("v1", 1), image("v2", 2), image("v3", 3), image("v4", 4), image("v5", 5)]
    assert prune.selection(images, 2, set()) == (["v4", "v5"], ["v1", "v2", "v3"])


def test_a_tag_in_use_stays_however_old():
    images = [image("v1", 1), image("v2", 2), image("v3", 3)]
    assert prune.selection(images, 1, {"v1"}) == (["v1", "v3"], ["v2"])


def test_a_digest_a_kept_tag_has_is_never_deleted_under_another_tag():
    images = [image("old-name", 1, "sha256:same"), image("v2", 2), image("current", 3, "sha256:same")]
    assert prune.selection(images, 1, set()) == (["current", "old-name"], ["v2"])


def test_an_image_of_unknown_age_stays():
    images = [("index", "sha256:index", ""), image("v1", 1), image("v2", 2)]
    assert prune.selection(images, 1, set()) == (["index", "v2"], ["v1"])


def test_build_times_sort_as_times_though_go_trims_their_fractions():
    images = [image("at-0.1234567s", 1, fraction=".1234567"), image("at-0.12s", 1, fraction=".12")]
    assert prune.selection(images, 1, set()) == (["at-0.1234567s"], ["at-0.12s"])  # as strings, ".12Z" sorts last
