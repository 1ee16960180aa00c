"""medface's data model: volumes, meshes, landmarks, images, plans and results."""

from .image import FaceImage
from .landmarks import Landmarks
from .mesh import SurfaceMesh
from .plan import Plan
from .provenance import InputRecord, Provenance, sha256_file, sha256_path
from .result import Result
from .volume import Volume

__all__ = ["FaceImage", "Landmarks", "SurfaceMesh", "Plan", "Provenance", "InputRecord", "Result", "Volume",
           "sha256_file", "sha256_path"]
