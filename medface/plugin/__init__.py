"""The plugin system: manifests, discovery, the registry, parameter binding, running, self-tests."""

from .manifest import MANIFEST_NAME, CommandSpec, Manifest, ParameterSpec, read_manifest
from .registry import PluginInfo, Registry, get_registry

__all__ = ["MANIFEST_NAME", "CommandSpec", "Manifest", "ParameterSpec", "PluginInfo", "Registry", "get_registry",
           "read_manifest"]
