"""Self-test: a synthetic CT of a bone shell in water reads back with the right geometry and HU."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def selftest(workdir: Path) -> str:
    import medface
    from medface.data import Volume
    from medface.io import write_volume

    k, j, i = np.mgrid[0:40, 0:48, 0:56]
    r = np.sqrt(((i - 28) * 1.0) ** 2 + ((j - 24) * 1.0) ** 2 + ((k - 20) * 2.0) ** 2)
    hu = np.full(r.shape, -1000, np.int16)
    hu[r < 20] = 40
    hu[(r >= 16) & (r < 20)] = 1200
    theta = np.deg2rad(20)
    direction = np.array([[np.cos(theta), -np.sin(theta), 0], [np.sin(theta), np.cos(theta), 0], [0, 0, 1]])
    vol = Volume(hu, spacing=(1.0, 1.0, 2.0), origin=(-28.0, -24.0, -40.0), direction=direction, units="HU")
    path = workdir / "shell.nii.gz"
    write_volume(vol, path)
    result = medface.run("surgery.inspect-ct", ct=path, out=workdir / "out")
    assert result.summary["size_ijk"] == "56 x 48 x 40", result.summary
    assert result.summary["values_in_hu"] is True, result.warnings
    expected_ml = float((hu >= 300).sum()) * 2.0 / 1000.0
    assert abs(result.metrics["bone_volume_ml"] - expected_ml) < 1e-6, result.metrics
    assert (workdir / "out" / "result.json").is_file()
    return f"geometry, HU detection and bone volume ({expected_ml:.1f} ml) correct on a synthetic CT"
