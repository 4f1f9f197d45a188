"""pyinfra's operation order read from the call stack's frames (labhub/operation_order.py)
equals what pyinfra reads with `inspect.stack()`, at any depth, from a deploy file or not:
no host needed. Every real deploy of the suite runs with it (config.py installs it)."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import SimpleNamespace

import pyinfra
import pytest
from pyinfra.api.util import get_operation_order_from_stack

from labhub import operation_order
from labhub.operation_order import operation_order_from_frames

pytestmark = pytest.mark.quick


def both(state):
    return get_operation_order_from_stack(state), operation_order_from_frames(state)  # one line: one line number for both


def nested(state, depth: int):
    if depth:
        return nested(state, depth - 1)
    return both(state)


@pytest.mark.parametrize("depth", [0, 1, 5])
@pytest.mark.parametrize("from_deploy_file", [True, False])
@pytest.mark.parametrize("cli", [True, False])
def test_the_order_from_frames_is_pyinfras(monkeypatch, depth, from_deploy_file, cli):
    monkeypatch.setattr(pyinfra, "is_cli", cli)
    state = SimpleNamespace(current_deploy_filename=__file__ if from_deploy_file else None, current_op_file_number=7)
    pyinfras, ours = nested(state, depth)
    assert ours == pyinfras
    assert len(ours) >= depth + 2 + (1 if cli else 0)  # this test's frames are in it: not an empty list on both sides


def test_config_py_installs_it():
    operation = importlib.import_module("pyinfra.api.operation")
    saved = operation.get_operation_order_from_stack
    try:
        operation_order.install()
        assert operation.get_operation_order_from_stack is operation_order_from_frames
    finally:
        operation.get_operation_order_from_stack = saved
    assert "operation_order.install()" in (Path(__file__).parents[1] / "config.py").read_text()
