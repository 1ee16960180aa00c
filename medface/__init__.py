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

__all__ = ["__version__", "run", "plugins", "MedfaceError", "InputError", "ParameterError", "PluginError",
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


_LAZY_SUBMODULES = {"data", "io", "anatomy", "runtime", "viz", "phantom", "report", "plugin", "cli", "errors", "policy",
                    "audit"}


def __getattr__(name: str):
    if name in _LAZY_SUBMODULES:
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'medface' has no attribute {name!r}")
