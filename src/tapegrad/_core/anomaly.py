"""Anomaly mode's switch, and the forward traceback it keeps with each recorded node.

Process-wide, as in PyTorch. While it is on, every node that needs a gradient keeps the stack of
the user code that recorded it in `node.metadata["traceback_"]` (PyTorch's key and format: a list
of formatted frames), and the backward pass runs node by node, checking each node's gradients
(`_autograd.anomaly`). Off, recording pays one attribute test per node that needs a gradient.
"""
from __future__ import annotations

import os
import traceback


class _State:
    enabled = False
    check_nan = True


state = _State()

_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def remember_forward(node) -> None:
    """Keep the stack that recorded `node`, up to the last frame outside tapegrad."""
    frames = traceback.extract_stack()
    while frames and frames[-1].filename.startswith(_PACKAGE):
        frames.pop()
    node.metadata["traceback_"] = traceback.format_list(frames)
