"""medface: facial analysis for healthcare and forensics.

The core loads plugins (phenotype, surgery, forensic, and any you add) from their manifests
and runs their commands::

    import medface
    medface.plugins()                      # the registry: name -> plugin info and status
    result = medface.run("surgery.inspect-ct", ct="head.nii.gz")

Importing this package is cheap: heavy libraries (torch, SimpleITK, VTK) load only when a
command needs them.
"""

from __future__ import annotations

from .errors import (DeviceError, InputError, ManifestError, MedfaceError, ModelError, OutputError, ParameterError,
                     PluginError)

from .version import __version__

__all__ = ["__version__", "run", "batch", "plugins", "MedfaceError", "InputError", "ParameterError", "PluginError",
           "ManifestError", "ModelError", "DeviceError", "OutputError"]


def plugins(refresh: bool = False):
    """The plugin registry of this process (scanned once, then cached)."""
    from .plugin.registry import get_registry

    return get_registry(refresh=refresh)


def run(command: str, /, *, purpose: str | None = None, consent: str | None = None, record_paths: bool = False,
        embed_images: bool = False, face_images: bool = True, audit_log=None, **params):
    """Run a plugin command, e.g. ``run("forensic.reconstruct", skull="skull.stl", out="out")``.

    Parameters are converted and range-checked against the plugin's manifest before the
    plugin's code is imported; the returned :class:`medface.data.Result` carries provenance.

    The run options apply to every command (``docs/privacy.md``): ``purpose`` (clinical,
    research, casework or education) and ``consent`` (a reference string) go into the
    provenance, the report and the audit log; ``record_paths`` records absolute input paths
    (default: file names); ``embed_images`` embeds face pictures in the report (default: a link);
    ``face_images=False`` leaves every face picture out of the outputs; ``audit_log`` is a file
    that gets one JSON line per run. A site's ``medface.toml`` may require some of them.
    """
    from .plugin.runner import run_command
    from .policy import RunOptions

    options = RunOptions.from_kwargs({"purpose": purpose, "consent": consent, "record_paths": record_paths,
                                      "embed_images": embed_images, "face_images": face_images,
                                      "audit_log": audit_log})
    return run_command(command, params, options=options)


def batch(command: str, inputs, out, /, *, engine: str = "local", workers: int | None = None,
          ray_address: str | None = None, resume: bool = False, max_failures: int | None = None,
          input_param: str | None = None, progress: bool | None = None, streaming: bool | None = None,
          purpose: str | None = None, consent: str | None = None, **params):
    """Run a plugin command on many inputs, e.g. ``batch("phenotype.screen", "photos/", "out")``.

    ``inputs``: a CSV/Parquet table (columns = parameters), a folder or glob (each file to the
    command's main input, or to ``input_param``), or a list of parameter dicts. ``params`` go to
    every item. ``engine``: "local" (a process pool of ``workers``) or "ray" (a new local Ray
    cluster, or the one at ``ray_address``; a command with streaming stages runs as a Ray Data
    pipeline on a cluster with GPUs, or wherever ``streaming=True``; ``streaming=False``: never).
    Returns a :class:`medface.batches.BatchResult`;
    see ``docs/batch.md``."""
    from .batches import run_batch

    options = {k: v for k, v in {"purpose": purpose, "consent": consent}.items() if v is not None}
    return run_batch(command, inputs, out, engine=engine, workers=workers, ray_address=ray_address, resume=resume,
                     max_failures=max_failures, input_param=input_param, params=params, options=options,
                     progress=progress, streaming=streaming)


_LAZY_SUBMODULES = {"data", "io", "anatomy", "runtime", "viz", "phantom", "report", "plugin", "cli", "errors", "policy",
                    "audit"}


def __getattr__(name: str):
    if name in _LAZY_SUBMODULES:
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'medface' has no attribute {name!r}")
