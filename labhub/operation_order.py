"""pyinfra orders a deploy's operations by the line numbers of the deploy code that called
them, which it reads from the call stack with `inspect.stack()`: that also reads the source
lines of every frame (each module's file found and read), ~4 ms per operation, a tenth of a
whole-stack no-op run's CPU. The same numbers come from the frames themselves.

`install()` (config.py) replaces pyinfra 3.10's `get_operation_order_from_stack` with one that
returns the same list from `frame.f_code.co_filename` and `frame.f_lineno`, which is what
`inspect.getframeinfo` reports as a frame's file and line. tests/test_operation_order.py
checks that both give the same order.
"""

from __future__ import annotations

import importlib
import sys

import pyinfra
from pyinfra.api.util import PYINFRA_INSTALL_DIR


def operation_order_from_frames(state) -> list[int]:
    """pyinfra.api.util.get_operation_order_from_stack, without reading source files: the line
    numbers of the calls from the deploy file inward, pyinfra's own frames left out."""
    frames = []
    frame = sys._getframe(1)
    while frame is not None:
        frames.append(frame)
        frame = frame.f_back
    frames.reverse()  # outermost first, as reversed(inspect.stack())
    start = 0
    if state.current_deploy_filename:
        for start, frame in enumerate(frames):
            if frame.f_code.co_filename == state.current_deploy_filename:
                break
    numbers = [state.current_op_file_number] if pyinfra.is_cli else []
    numbers += [frame.f_lineno for frame in frames[start:] if not frame.f_code.co_filename.startswith(PYINFRA_INSTALL_DIR)]
    return numbers


def install() -> None:
    operation = importlib.import_module("pyinfra.api.operation")  # `pyinfra.api.operation` is also the decorator's name
    operation.get_operation_order_from_stack = operation_order_from_frames
