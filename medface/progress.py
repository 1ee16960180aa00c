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
