"""Anatomy shared by every plugin: the landmark vocabulary, cephalometry, CT intensity and segmentation.

::

    from medface import anatomy, io
    anatomy.resolve("soft tissue pogonion")            # -> "pog_s" (the vocabulary)
    landmarks = io.read("landmarks.mrk.json")
    frame = anatomy.head_frame(landmarks)              # Frankfurt-based axes of this head
    plane = anatomy.midsagittal_plane(landmarks)
    seg = anatomy.segment_ct(io.read("head_ct/"))     # skin, skull and mandible surfaces

Modules: :mod:`~medface.anatomy.landmarks` (the vocabulary, kept in
:mod:`medface.data.vocabulary`, and its documentation tables), :mod:`~medface.anatomy.cephalometry`
(head frame, mid-sagittal plane, measurements), :mod:`~medface.anatomy.ct_intensity` (is an
array in HU?), :mod:`~medface.anatomy.ct_checks` (can a CT be segmented: slices, size, table, cut
ends), :mod:`~medface.anatomy.ct_segmentation` (CT to skin and bone surfaces) and
:mod:`~medface.anatomy.registration` (similarity, ICP, displacement fields).

Importing this package is cheap: numpy, scipy and VTK load when a function that needs them is
first used.
"""

from __future__ import annotations

from ..lazy import lazy_exports

__all__ = [
    # the landmark vocabulary
    "VOCABULARY", "LandmarkDef", "UnknownLandmarkError", "resolve", "is_known", "mirror_id", "counterpart",
    "craniometric_ids", "soft_tissue_ids", "bilateral_pairs",
    # cephalometry
    "HeadFrame", "SymmetryPlane", "head_frame", "midsagittal_plane", "reflection_matrix", "measure",
    "asymmetry_index", "before_after_table", "soft_tissue_change",
    # CT
    "judge_hu", "IntensityVerdict", "calibrate_hu", "Calibration", "segment_ct", "Segmentation",
    # registration
    "umeyama", "Similarity", "icp", "ICPResult", "PointCloud", "fit_displacement_field", "DisplacementField",
]

_LAZY = {
    **{name: "landmarks" for name in ("VOCABULARY", "LandmarkDef", "UnknownLandmarkError", "resolve", "is_known",
                                      "mirror_id", "counterpart", "craniometric_ids", "soft_tissue_ids",
                                      "bilateral_pairs")},
    **{name: "cephalometry" for name in ("HeadFrame", "SymmetryPlane", "head_frame", "midsagittal_plane",
                                         "reflection_matrix", "measure", "asymmetry_index", "before_after_table",
                                         "soft_tissue_change")},
    "judge_hu": "ct_intensity", "IntensityVerdict": "ct_intensity",
    "calibrate_hu": "ct_segmentation", "Calibration": "ct_segmentation", "segment_ct": "ct_segmentation",
    "Segmentation": "ct_segmentation",
    **{name: "registration" for name in ("umeyama", "Similarity", "icp", "ICPResult", "PointCloud",
                                         "fit_displacement_field", "DisplacementField")},
}
_MODULES = ("landmarks", "cephalometry", "ct_intensity", "ct_checks", "ct_segmentation", "registration")

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, modules=_MODULES)
