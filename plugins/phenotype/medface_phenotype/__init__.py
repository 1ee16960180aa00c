"""medface phenotype plugin: facial gestalt screening for genetic conditions.

The logic is importable without the CLI and without files (docs/phenotype.md, "Python API")::

    from medface_phenotype import Screener

    screener = Screener()                          # the bundled demo model (synthetic data only)
    found = screener.screen(pixels)[0]             # ScreeningResult: verdict, ranking, attention map
    found.quality.verdict, found.conditions[0].condition, found.syndromic_score

Names are imported on first use, so importing the package stays cheap.
"""

from __future__ import annotations

from medface.lazy import lazy_exports


__version__ = "0.1.0"

#: public name -> module (relative to this package) that defines it
_EXPORTS = {
    "Screener": "screening", "ScreeningResult": "screening", "RankedCondition": "screening",
    "DEMO_MODEL": "screening", "load_package": "screening", "screen_many": "screening",
    "screen_surface": "surface", "frontal_view": "surface", "FrontalView": "surface",
    "load_face_mesh": "surface",
    "prepare": "faces", "PreparedFace": "faces", "QualityReport": "quality",
    "ScreeningTrainer": "train", "TrainingSettings": "train", "TrainingSummary": "train",
    "ScreeningEvaluation": "evaluate", "grow_gallery": "gallery_add", "GalleryGrowth": "gallery_add",
    "Gallery": "gallery", "load_gallery": "gallery", "save_gallery": "gallery",
    "FaceDataset": "dataset", "read_dataset": "dataset", "PhantomCohort": "phantom_data",
    "write_validation_markdown": "validation_doc", "write_evaluation": "validation_doc",
    "cross_validate": "crossval", "OODGate": "ood", "load_gate": "ood", "RegionAttention": "explain",
    "find_overlap": "leakage",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
