"""The plugin system: manifests, discovery, the registry, parameter binding, running, panels, self-tests."""

from ..lazy import lazy_exports
from .manifest_summary import MANIFEST_NAME
from .registry import PluginInfo, Registry, get_registry

__all__ = ["MANIFEST_NAME", "CommandSpec", "Manifest", "PanelSpec", "ParameterSpec", "PluginInfo", "Registry",
           "get_registry", "read_manifest"]

# the manifest model imports pydantic: loaded when first used, not when plugins are listed
__getattr__, __dir__ = lazy_exports(__name__, {name: "manifest" for name in
                                               ("CommandSpec", "Manifest", "PanelSpec", "ParameterSpec",
                                                "read_manifest")})
