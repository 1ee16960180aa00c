"""Whether to show progress (bars, stage lines): one rule for every layer.

On an interactive terminal only; never in CI, never when ``MEDFACE_QUIET`` is set, never when
stderr is not a terminal (a pipe, a file, a closed stream).
"""

from __future__ import annotations

import os
import sys


def progress_enabled() -> bool:
    """True when progress may be shown on stderr."""
    if os.environ.get("MEDFACE_QUIET") or os.environ.get("CI"):
        return False
    try:
        return bool(sys.stderr.isatty())
    except (AttributeError, ValueError):  # no stderr, or a closed one
        return False


_stage_listeners: list = []


def add_stage_listener(listener) -> None:
    """Call ``listener(command_id, number, text)`` whenever a running command announces a stage
    (a GUI's progress line, a worker reporting to its parent); listeners are called whether or
    not progress is shown on the terminal."""
    _stage_listeners.append(listener)


def remove_stage_listener(listener) -> None:
    if listener in _stage_listeners:
        _stage_listeners.remove(listener)


def announce_stage(command: str, number: int, text: str) -> None:
    """Tell every stage listener; a listener that fails never stops the command."""
    for listener in list(_stage_listeners):
        try:
            listener(command, number, text)
        except Exception:  # a broken progress display must not break a run
            pass
