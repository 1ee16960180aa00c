"""medface forensic plugin: skull-to-face reconstruction.

The logic is importable without the CLI and without files (docs/forensic.md, "Python API")::

    from medface_forensic import FaceModel, Reconstruction, SkullRegistration

    registration = SkullRegistration(skull_mesh).run()          # or stage by stage
    rec = Reconstruction(variants=4).run(skull_mesh, sex="F")   # a ReconstructionResult
    rec.face, rec.sd_mm, rec.variants, rec.soft_tissue_landmarks

Names are imported on first use, so importing the package stays cheap.
"""

from __future__ import annotations

from medface.lazy import lazy_exports


__version__ = "0.1.0"

_EXPORTS = {
    "SkullRegistration": "register", "Registration": "register", "InitialPose": "register",
    "SimilarityFit": "register", "NonRigidFit": "register", "register_skull": "register",
    "register_skin": "register",
    "Reconstruction": "reconstruction", "ReconstructionResult": "reconstruction",
    "reconstruct_face": "reconstruction",
    "FaceModel": "face_model",
    "ShapeModel": "shape_model", "FacePosterior": "shape_model", "load_model": "shape_model",
    "save_model": "shape_model",
    "default_model": "model_cache", "MODEL_VERSION": "model_cache",
    "TemplateHead": "template", "template_head": "template", "TEMPLATE_VERSION": "template",
    "SkullInput": "skull_input", "load_skull": "skull_input", "prepare_skull": "skull_input",
    "CTSkull": "ct_input", "skull_from_ct": "ct_input",
    "read_pairs": "train", "train_from_pairs": "train", "train_phantom_model": "train",
    "tissue_depth_face": "baseline", "TissueDepthFaces": "baseline",
    "ConditionedFace": "live",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
