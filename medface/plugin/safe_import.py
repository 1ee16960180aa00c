"""Importing plugin code without letting it end medface.

A plugin's module runs arbitrary code when it is imported. Two things it may do there would end
medface itself instead of making one plugin broken: ``sys.exit()`` (a ``SystemExit``, which
``except Exception`` does not catch) and ``os._exit()`` (which ends the process at once, with no
exception at all). :func:`import_plugin_module` therefore catches every exception but
``KeyboardInterrupt`` and, while the import runs, makes ``os._exit`` raise in the importing
thread (:func:`exits_raise`); other threads, and children forked meanwhile, keep the real one.

Nothing in a process can stop a module that kills it outright (a signal to itself, a crash in
native code, ``posix._exit``). ``medface plugins list --imports`` therefore imports each plugin
in a forked child (:func:`medface.io.isolated.run_isolated`; see
:meth:`.registry.Registry.check_imports`), so that such a plugin is reported broken by name while
the listing goes on. Running a command imports in-process: a forked child per run would cost
the import twice and could not hand back the plugin's functions.
"""

from __future__ import annotations

import importlib
import os
import threading
from collections import Counter
from contextlib import contextmanager
from types import ModuleType

__all__ = ["ImportProblem", "exits_raise", "import_plugin_module"]


class ImportProblem(Exception):
    """Importing plugin code failed; ``str()`` says how (for the plugin's broken reason)."""


class _ExitCalled(BaseException):
    """Raised in place of ``os._exit`` while plugin code is being imported."""

    def __init__(self, code):
        super().__init__(code)
        self.code = code


_LOCK = threading.Lock()
_GUARDED: Counter = Counter()  # (pid, thread id) -> nesting depth
_REAL_EXIT = os._exit


def _guarded_exit(code=0):
    if _GUARDED.get((os.getpid(), threading.get_ident())):
        raise _ExitCalled(code)
    _REAL_EXIT(code)


@contextmanager
def exits_raise():
    """While the block runs, ``os._exit`` called from this thread raises instead of ending the
    process; the real ``os._exit`` is back once no thread is in such a block."""
    global _REAL_EXIT
    key = (os.getpid(), threading.get_ident())
    with _LOCK:
        if not _GUARDED and os._exit is not _guarded_exit:
            _REAL_EXIT, os._exit = os._exit, _guarded_exit
        _GUARDED[key] += 1
    try:
        yield
    finally:
        with _LOCK:
            _GUARDED[key] -= 1
            if _GUARDED[key] <= 0:
                del _GUARDED[key]
            if not _GUARDED and os._exit is _guarded_exit:
                os._exit = _REAL_EXIT


def import_plugin_module(name: str) -> ModuleType:
    """``importlib.import_module(name)``; any failure, an exit included, is an :class:`ImportProblem`."""
    try:
        with exits_raise():
            return importlib.import_module(name)
    except KeyboardInterrupt:
        raise
    except SystemExit as exc:
        raise ImportProblem(f"it called sys.exit({exc.code!r}) while being imported; plugin code must not end "
                            f"the process (raise an exception instead)") from None
    except _ExitCalled as exc:
        raise ImportProblem(f"it called os._exit({exc.code!r}) while being imported; plugin code must not end "
                            f"the process (raise an exception instead)") from None
    except BaseException as exc:  # noqa: BLE001 - any import-time failure makes one plugin broken
        raise ImportProblem(f"{type(exc).__name__}: {exc}") from exc
