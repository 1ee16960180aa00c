"""The shared inference runtime: devices and precision, model packages, the network allow-list
and ONNX export (see docs/runtime.md).

Importing this package is cheap: torch loads when one of the names below is first used.
"""

from __future__ import annotations

from ..lazy import lazy_exports


_EXPORTS = {
    # device.py
    "resolve_device": "device", "available_devices": "device", "autocast_dtype": "device", "autocast": "device",
    "configure_threads": "device", "seed_everything": "device", "prepare_model": "device",
    "unwrap_model": "device", "describe_device": "device", "CompiledModel": "device",
    # networks.py
    "ARCHITECTURES": "networks", "register_architecture": "networks", "build_network": "networks",
    "SmallCNN": "networks", "network_bytes": "networks", "max_model_bytes": "networks",
    # package.py
    "ModelCard": "package", "ModelPackage": "package", "save_package": "package", "load_package": "package",
    "verify_package": "package", "read_card": "package", "WEIGHTS_FILE": "package", "CARD_FILE": "package",
    "pin_package": "package", "package_pin": "package", "package_hashes": "package",
    "card_content_sha256": "package",
    # export.py
    "export_onnx": "export", "OnnxBackend": "export", "compare_with_torch": "export",
    # predictor.py
    "Predictor": "predictor", "Predictions": "predictor",
    # training.py
    "TrainConfig": "training", "TrainingResult": "training", "train": "training",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
