"""CT to surfaces on a 256x256x200 head CT: `surgery segment` against a naive baseline.

Run: .venv/bin/python benchmarks/surgery_segment.py

The CT is the sample phantom head (`medface sample-data`'s subject) taken as a CT of 256x256x200
voxels (about 0.68 x 0.9 x 1.45 mm, 10 HU of seeded noise): a realistic size for a head CT, with
the phantom's joint space and bite gap (medface.phantom.ct.JAW_GAP_MM), so the timing includes
the occlusion-ready mandible split (lower teeth and condyles with the mandible).

medface:  segment_ct: calibration check, skin and bone masks, mandible split, flying edges,
          windowed-sinc smoothing and decimation to 100,000 faces per surface.
baseline: the same pipeline meshing at full resolution (flying edges on every voxel, then the
          same smoothing and decimation to the same face budget), measured in the same run.
For reference it also prints a bare threshold + skimage marching cubes (no cleanup, no
smoothing, no decimation, no mandible split: about a million faces nobody can use as is).
also: the same pipeline with VTK's quadric decimation (as before fast-simplification).
ratio = baseline time / medface time (higher is better).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "plugins" / "surgery"))


def big_ct():
    """(the 256x256x200 CT, a 2 mm one of the same head for the warm-up)."""
    from medface.phantom import make_head
    from medface.phantom.ct import head_ct
    from medface.phantom.sample_data import sample_subject

    head = make_head(sample_subject(np.random.default_rng(0), sex="F", age=38.0, bmi=23.5, subject_id="sample-0"))
    small = head_ct(head, spacing=2.0, seed=0)
    extent = np.asarray(small.spacing) * (np.asarray(small.shape_ijk) - 1)
    target = np.array([256, 256, 200])  # i, j, k
    ct = head_ct(head, spacing=tuple(extent / (target - 1)), seed=0)
    return ct, small


def full_resolution(ct) -> tuple[float, int]:
    """The same pipeline with the adaptive meshing grid switched off."""
    import medface.anatomy.ct_segmentation as seg_module

    saved = seg_module.mesh_steps
    seg_module.mesh_steps = lambda mask, spacing, target_faces: (1, 1, 1)
    try:
        t0 = time.perf_counter()
        seg = seg_module.segment_ct(ct, target_faces=100_000)
        return time.perf_counter() - t0, sum(m.n_faces for m in seg.meshes.values())
    finally:
        seg_module.mesh_steps = saved


def vtk_decimation(ct) -> float:
    """The same pipeline decimating with VTK's quadric decimation (the pipeline before
    fast-simplification), measured in the same run."""
    import medface.anatomy.ct_segmentation as seg_module

    def vtk_only(surf, target_faces):
        reduction = 1.0 - target_faces / surf.n_cells
        out = surf.decimate(reduction, volume_preservation=True)
        return out if seg_module._closed(out) else surf

    saved = seg_module._decimate
    seg_module._decimate = vtk_only
    try:
        t0 = time.perf_counter()
        seg_module.segment_ct(ct, target_faces=100_000)
        return time.perf_counter() - t0
    finally:
        seg_module._decimate = saved


def bare_marching_cubes(ct) -> tuple[float, int]:
    from scipy.ndimage import label
    from skimage.measure import marching_cubes

    t0 = time.perf_counter()
    a = ct.array.astype(np.float32)
    labels, _n = label(a >= -400)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    skin = (labels == np.argmax(sizes)).astype(np.float32)
    faces = 0
    for mask in (skin, (a >= 300).astype(np.float32)):
        _v, f, _, _ = marching_cubes(mask, 0.5, spacing=ct.spacing[::-1])
        faces += len(f)
    return time.perf_counter() - t0, faces


def main() -> None:
    from medface.anatomy.ct_segmentation import segment_ct

    ct, small = big_ct()
    print(f"CT: {ct.shape_ijk} voxels, spacing {tuple(round(s, 3) for s in ct.spacing)} mm")
    segment_ct(small, target_faces=20_000)  # warm-up: imports
    t0 = time.perf_counter()
    seg = segment_ct(ct, target_faces=100_000)
    t_med = time.perf_counter() - t0
    faces = sum(m.n_faces for m in seg.meshes.values())
    print(f"medface: {t_med:.2f} s, {faces} faces in {', '.join(seg.meshes)}; steps {seg.timings_s}")
    print(f"mandible: {seg.mandible_method}; watertight: "
          f"{', '.join(f'{k}={m.is_watertight()}' for k, m in seg.meshes.items())}")
    t_base, faces_base = full_resolution(ct)
    print(f"baseline (same pipeline, meshing at full resolution): {t_base:.2f} s, {faces_base} faces")
    t_vtk = vtk_decimation(ct)
    print(f"same pipeline with VTK's quadric decimation (before fast-simplification): {t_vtk:.2f} s")
    t_mc, faces_mc = bare_marching_cubes(ct)
    print(f"reference (bare threshold + skimage marching cubes, no cleanup): {t_mc:.2f} s, {faces_mc} faces")
    print(f"segment_s={t_med:.2f} baseline_s={t_base:.2f} faces={faces} baseline_faces={faces_base} "
          f"vtk_decimation_s={t_vtk:.2f} bare_mc_s={t_mc:.2f} within_5s={t_med <= 5.0} ratio={t_base / t_med:.2f}")


if __name__ == "__main__":
    main()
