"""Native reads in a child process: a crash, a hang or an allocation failure there becomes an
InputError naming the file, and the calling process carries on."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from medface.errors import InputError
from medface.io.isolated import run_isolated


def test_the_childs_answer_comes_back():
    values = run_isolated(lambda n: np.arange(n), 1000)
    np.testing.assert_array_equal(values, np.arange(1000))


def test_a_segfault_in_the_reader_is_an_input_error_naming_the_file():
    with pytest.raises(InputError, match="crash.*SIGSEGV") as info:
        run_isolated(ctypes.string_at, 0, path="skull.vtk", what="mesh")
    assert "skull.vtk" in str(info.value)


def test_a_hang_is_stopped_at_the_time_limit():
    started = time.perf_counter()
    with pytest.raises(InputError, match="longer than 0.5 s"):
        run_isolated(time.sleep, 30, path="x.mha", timeout_s=0.5)
    assert time.perf_counter() - started < 10


def test_an_allocation_beyond_the_cap_is_an_input_error():
    with pytest.raises(InputError, match="more memory"):
        run_isolated(lambda: np.ones(1 << 33, np.uint8), path="x.nrrd", memory_bytes=1 << 31)


def test_the_readers_own_error_is_raised_as_it_is():
    with pytest.raises(InputError, match="not a mesh"):
        run_isolated(lambda: (_ for _ in ()).throw(InputError("not a mesh")))


def test_a_process_already_under_a_memory_limit_still_reads():
    """A cap above a limit already in force (ulimit -v, a fuzz worker) must not make every read
    fail: the child keeps the lower limit."""
    code = ("import resource, numpy as np\n"
            "from medface.io.isolated import run_isolated, mapped_bytes\n"
            "cap = mapped_bytes() + (2 << 30)\n"
            "resource.setrlimit(resource.RLIMIT_AS, (cap, cap))\n"
            "print(run_isolated(lambda: int(np.arange(10).sum()), memory_bytes=cap + (8 << 30)))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "45"


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_an_answer_that_would_call_a_function_is_refused():
    """A reader subverted by a crafted file could answer with a pickle that runs code in the
    parent; only data, numpy arrays, medface's classes and exception classes are unpickled."""
    with pytest.raises(InputError, match="not a reader's result"):
        run_isolated(lambda: _Evil(), path="crafted.vtk", what="mesh")


def test_medface_objects_and_exceptions_come_back():
    from pathlib import Path

    from medface.data import SurfaceMesh

    mesh = run_isolated(lambda: SurfaceMesh(np.eye(3), np.array([[0, 1, 2]]), name="t"))
    assert isinstance(mesh, SurfaceMesh) and mesh.n_vertices == 3
    assert run_isolated(lambda: {"p": Path("a/b"), "x": np.float32(2.5)}) == {"p": Path("a/b"), "x": 2.5}
    with pytest.raises(KeyError):
        run_isolated(lambda: {}["missing"])
