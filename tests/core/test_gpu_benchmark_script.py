"""benchmarks/gpu_runtime.py must run on a GPU machine that has torch alone: its CPU smoke mode
runs the same code with medface's heavy dependencies made unimportable."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO

BLOCKED = ("monai", "SimpleITK", "trimesh", "pyvista", "vtk", "scipy", "skimage", "sklearn", "safetensors",
           "PIL", "jsonschema", "medface_phenotype", "medface_surgery", "medface_forensic")


def test_gpu_benchmark_runs_with_torch_and_numpy_alone():
    script = REPO / "benchmarks" / "gpu_runtime.py"
    code = ("import sys, runpy\n"
            f"for name in {BLOCKED!r}:\n"
            "    sys.modules[name] = None  # importing it raises ImportError\n"
            f"sys.argv = [{str(script)!r}, '--device', 'cpu', '--sizes', '32', '--batch-size', '8', "
            "'--workers', '2', '--seconds', '0.05']\n"
            f"runpy.run_path({str(script)!r}, run_name='__main__')\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         encoding="utf-8", cwd=str(REPO))
    assert run.returncode == 0, run.stderr[-2000:]
    last = run.stdout.strip().splitlines()[-1]
    fields = dict(kv.split("=") for kv in last.split())
    assert fields["cuda_available"] == "False"
    assert float(fields["raw_32"]) > 0 and float(fields["predictor_32"]) > 0 and float(fields["ratio"]) > 0
