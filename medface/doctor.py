"""`medface doctor`: the facts a bug report needs (versions, devices, renderer, plugins)."""

from __future__ import annotations

import os
import platform
import sys
from importlib.metadata import PackageNotFoundError, version

PACKAGES = ("numpy", "scipy", "torch", "monai", "SimpleITK", "vtk", "pyvista", "trimesh", "pillow", "safetensors",
            "scikit-learn", "manifold3d", "pydantic", "jinja2", "onnxruntime")


def _version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def _torch_info() -> dict:
    try:
        import torch
    except Exception as exc:  # a broken torch install is exactly what doctor must report
        return {"available": False, "error": f"{type(exc).__name__}: {exc}"}
    info = {"available": True, "version": torch.__version__, "cuda_available": torch.cuda.is_available(),
            "cuda_version": torch.version.cuda, "threads": torch.get_num_threads(),
            "mps_available": bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()),
            "gpus": []}
    if info["cuda_available"]:
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            info["gpus"].append({"index": i, "name": p.name, "memory_gib": round(p.total_memory / 2**30, 1),
                                 "capability": f"{p.major}.{p.minor}",
                                 "bf16": bool(torch.cuda.is_bf16_supported())})
    return info


def _render_window() -> dict:
    try:
        import vtk  # noqa: F401
        from vtkmodules.vtkRenderingCore import vtkRenderWindow
        import vtkmodules.vtkRenderingOpenGL2  # noqa: F401  (registers the OpenGL factory)
    except Exception as exc:
        return {"available": False, "error": f"{type(exc).__name__}: {exc}"}
    try:  # creating a window probes X first; keep that probe's warning off a bug report
        from vtkmodules.vtkCommonCore import vtkLogger

        vtkLogger.SetStderrVerbosity(vtkLogger.VERBOSITY_OFF)
    except ImportError:
        pass
    window = vtkRenderWindow()
    window.SetOffScreenRendering(1)
    return {"available": True, "class": window.GetClassName(),
            "display": os.environ.get("DISPLAY") or None}


def collect() -> dict:
    from .plugin.registry import get_registry

    registry = get_registry()
    return {
        "medface": _version("medface") or "not installed",
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "packages": {name: _version(name) for name in PACKAGES},
        "torch": _torch_info(),
        "render_window": _render_window(),
        "environment": {k: v for k, v in os.environ.items() if k.startswith("MEDFACE_")},
        "plugins": [registry[n].to_dict() for n in registry],
    }


def format_report(report: dict) -> str:
    lines = [f"medface {report['medface']}  python {report['python']}  {report['platform']}",
             f"cpus: {report['cpu_count']}", "packages:"]
    lines += [f"  {k:<14} {v or 'not installed'}" for k, v in report["packages"].items()]
    t = report["torch"]
    if t.get("available"):
        lines.append(f"torch: {t['version']}, CUDA {'yes' if t['cuda_available'] else 'no'}"
                     f"{' ' + str(t['cuda_version']) if t['cuda_version'] else ''}, "
                     f"MPS {'yes' if t['mps_available'] else 'no'}, {t['threads']} threads")
        for g in t["gpus"]:
            lines.append(f"  GPU {g['index']}: {g['name']}, {g['memory_gib']} GiB, sm {g['capability']}, "
                         f"bf16 {'yes' if g['bf16'] else 'no'}")
    else:
        lines.append(f"torch: unavailable ({t.get('error')})")
    r = report["render_window"]
    lines.append(f"render window: {r.get('class') or 'unavailable (' + str(r.get('error')) + ')'}"
                 f"{', DISPLAY=' + r['display'] if r.get('display') else ', no display (off-screen)'}")
    if report["environment"]:
        lines.append("environment: " + ", ".join(f"{k}={v}" for k, v in report["environment"].items()))
    lines.append("plugins:")
    for p in report["plugins"]:
        lines.append(f"  {p['name']:<12} {p['status']:<6} {p['version'] or ''}"
                     + (f"  reason: {p['reason']}" if p["reason"] else ""))
    return "\n".join(lines)
