"""Run a native reader in a child process, so that no file can kill medface.

VTK's and ITK's readers are C++; some malformed files make them crash (a segmentation fault, an
abort from ``std::bad_alloc``), which no ``try`` can catch. :func:`run_isolated` calls a reader in
a forked child (cheap: the child shares the parent's memory until it writes) and returns what it
returned, pickled through a pipe (and unpickled with an allow-list: plain data, numpy arrays,
medface's classes, exception classes; no other callables). A child that dies by a signal, exits without an answer, runs
past its time limit or grows past a memory cap becomes an :class:`InputError` naming the file; an
exception raised in the child is re-raised in the parent.

Where ``fork`` is not available (Windows) or isolation is switched off
(``MEDFACE_ISOLATE_READERS=0``, for debugging a reader), the function runs in-process.
"""

from __future__ import annotations

import os
import pickle
import select
import signal
import struct
import time
from typing import Any, Callable

from ..errors import InputError

__all__ = ["run_isolated", "isolation_enabled", "mapped_bytes"]

DEFAULT_TIMEOUT_S = 600.0


def mapped_bytes() -> int | None:
    """The address space this process maps now (Linux ``VmSize``), or None where unknown: a
    child's memory cap is this plus what its read may need (the child starts with all of it)."""
    try:
        with open("/proc/self/status", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def isolation_enabled() -> bool:
    return hasattr(os, "fork") and os.environ.get("MEDFACE_ISOLATE_READERS", "1") not in ("0", "false", "no")


def run_isolated(func: Callable[..., Any], *args, path=None, what: str = "file",
                 timeout_s: float = DEFAULT_TIMEOUT_S, memory_bytes: int | None = None, **kwargs) -> Any:
    """``func(*args, **kwargs)`` in a forked child; its return value must be picklable."""
    if not isolation_enabled():
        return func(*args, **kwargs)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child; coverage cannot see it
        os.close(read_end)
        _child(write_end, func, args, kwargs, memory_bytes)
    os.close(write_end)
    try:
        payload, timed_out = _read_all(read_end, timeout_s)
    finally:
        os.close(read_end)
    if timed_out:
        os.kill(pid, signal.SIGKILL)
    status = os.waitpid(pid, 0)[1]
    return _outcome(payload, status, timed_out, path=path, what=what, timeout_s=timeout_s)


def _child(write_end: int, func, args, kwargs, memory_bytes) -> None:  # pragma: no cover
    try:
        import faulthandler

        faulthandler.disable()  # the parent reports a crash as an InputError; no stack dump here
        _quiet_stderr()
        if memory_bytes:
            _cap_memory(memory_bytes)
        try:
            answer = ("ok", func(*args, **kwargs))
        except MemoryError:
            answer = ("memory", None)
        except BaseException as exc:  # noqa: BLE001 - handed to the parent as is
            answer = ("raised", exc)
        try:
            data = pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:  # an exception or value that cannot be pickled
            data = pickle.dumps(("raised", RuntimeError(f"{type(exc).__name__}: {exc}")))
        with os.fdopen(write_end, "wb") as out:
            out.write(struct.pack("<Q", len(data)))
            out.write(data)
    finally:
        os._exit(0)


def _quiet_stderr() -> None:  # pragma: no cover - runs in the child
    """Native readers print their own complaints (``MetaImage: M_Read: Error parsing file``) on
    stderr; the parent turns the failure into one InputError, so the child's stderr is dropped
    unless ``MEDFACE_VERBOSE`` is set."""
    if os.environ.get("MEDFACE_VERBOSE"):
        return
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
    except OSError:
        pass


def _cap_memory(memory_bytes: int) -> None:  # pragma: no cover - runs in the child
    """Lower the child's address-space limit to ``memory_bytes``; never above a limit already in
    force (``ulimit -v``, or a parent that capped this process), which would fail."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limits = [x for x in (soft, hard) if x != resource.RLIM_INFINITY]
    cap = min([memory_bytes, *limits])
    try:
        resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    except (ValueError, OSError):
        pass


def _read_all(fd: int, timeout_s: float) -> tuple[bytes, bool]:
    deadline = time.monotonic() + timeout_s
    chunks = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return b"".join(chunks), True
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            continue
        block = os.read(fd, 1 << 20)
        if not block:
            return b"".join(chunks), False
        chunks.append(block)


def _outcome(payload: bytes, status: int, timed_out: bool, *, path, what: str, timeout_s: float):
    if timed_out:
        raise InputError(f"reading the {what} took longer than {timeout_s:g} s and was stopped", path=path,
                         hint="the file may be malformed; check it with another program")
    if len(payload) >= 8 and len(payload) - 8 == struct.unpack("<Q", payload[:8])[0]:
        kind, value = _answer(payload[8:], path=path, what=what)
        if kind == "ok":
            return value
        if kind == "memory":
            raise InputError(f"reading the {what} needed more memory than allowed", path=path,
                             hint="the file may declare sizes it does not hold")
        raise value
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
        raise InputError(f"the {what} made the reader crash ({name}); the file is malformed or not what its "
                         f"name says", path=path, hint="check the file with another program, or export it again")
    raise InputError(f"the reader of the {what} stopped without an answer (exit status {os.WEXITSTATUS(status)})",
                     path=path, hint="the file may be malformed")


#: what a reader's answer may be made of: plain containers and numbers, numpy arrays, medface's
#: data classes, paths and times, and exception classes already loaded in this process
_SAFE_BUILTINS = frozenset({"tuple", "list", "dict", "set", "frozenset", "str", "bytes", "bytearray", "int", "float",
                            "complex", "bool", "slice", "range", "NoneType"})
_SAFE_ROOTS = ("numpy", "medface", "pathlib", "datetime", "collections")
_NUMPY_BUILDERS = frozenset({"_reconstruct", "scalar", "_frombuffer"})


class _AnswerUnpickler(pickle.Unpickler):
    """Unpickles only the kinds of object a reader returns: a child whose parser was subverted by a
    crafted file cannot make the parent call an arbitrary function (the usual pickle hazard)."""

    def find_class(self, module: str, name: str):
        import sys

        root = module.split(".")[0]
        if module == "builtins" and name in _SAFE_BUILTINS:
            return super().find_class(module, name)
        if root in _SAFE_ROOTS or module in sys.modules:
            obj = super().find_class(module, name)
            if isinstance(obj, type) and (root in _SAFE_ROOTS or issubclass(obj, BaseException)):
                return obj
            if root == "numpy" and name in _NUMPY_BUILDERS:
                return obj
        raise pickle.UnpicklingError(f"{module}.{name} is not something a reader returns")


def _answer(data: bytes, *, path, what: str):
    """(kind, value) of the child's pickled answer, read by :class:`_AnswerUnpickler`."""
    import io

    try:
        return _AnswerUnpickler(io.BytesIO(data)).load()
    except (pickle.UnpicklingError, AttributeError, ImportError, EOFError, ValueError) as exc:
        raise InputError(f"the reader of the {what} answered with something that is not a reader's result ({exc})",
                         path=path, hint="the file may be crafted to attack the reader; do not open it "
                                         "elsewhere") from exc
