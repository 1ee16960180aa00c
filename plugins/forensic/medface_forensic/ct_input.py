"""CT input for `forensic reconstruct`: the bone of a head CT as one skull mesh, in the CT's frame.

The shared anatomy toolkit (:func:`medface.anatomy.ct_segmentation.segment_ct`) calibrates the
values to HU, finds the orientation when the file stores none, and meshes skull and mandible;
here both become one skull mesh (the skin is not used), in mm and in the CT's own frame (origin,
spacing and direction from the file) so that every output overlays the CT. Where the bone runs
into the ends of the scan, the mesh's closing caps are removed and the scanned box becomes the
registration's field of view: the skull beyond it is extrapolated, not observed.

::

    ct_skull = skull_from_ct(read_volume("head.nii.gz"))
    ct_skull.skull, ct_skull.field_of_view(points), ct_skull.summary()
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from medface.data import SurfaceMesh, Volume
from medface.errors import ParameterError

CAP_VOXELS = 1.0  # a closing cap lies within this many voxels of (or beyond) the volume's end
TARGET_FACES = 60_000  # registration samples 25,000 points: more faces add time, not accuracy
_AXIS_NAMES = {(0, -1): "right", (0, 1): "left", (1, -1): "anterior", (1, 1): "posterior",
               (2, -1): "inferior", (2, 1): "superior"}  # LPS axis, sign -> anatomical side


@dataclass
class FieldOfView:
    """The scanned box of a volume: ``inside(points, margin_mm)`` for points in the CT's frame.

    A point is inside when its continuous voxel index lies between the first and last voxel
    centres on every axis, shrunk by ``margin_mm``."""

    origin: np.ndarray
    index_to_mm: np.ndarray  # 3x3: columns are the LPS steps (mm) of the i, j, k axes
    shape_ijk: np.ndarray
    spacing: np.ndarray

    @classmethod
    def of(cls, volume: Volume) -> FieldOfView:
        spacing = np.asarray(volume.spacing, float)
        return cls(np.asarray(volume.origin, float), np.asarray(volume.direction, float) @ np.diag(spacing),
                   np.asarray(volume.array.shape[::-1]), spacing)

    def index(self, points: np.ndarray) -> np.ndarray:
        return np.linalg.solve(self.index_to_mm, (np.asarray(points, float) - self.origin).T).T

    def __call__(self, points: np.ndarray, margin_mm: float = 0.0) -> np.ndarray:
        ijk = self.index(points)
        m = margin_mm / self.spacing
        return np.all((ijk >= m) & (ijk <= self.shape_ijk - 1 - m), axis=1)


@dataclass
class CTSkull:
    """The bone of a CT as one skull mesh (mm, the CT's frame) and what the segmentation found.

    ``display`` (3x3) turns the CT's frame into the anatomical one (face to -y, top to +z) about
    the volume's origin, for pictures of a CT whose file stores no orientation (else identity).
    """

    skull: SurfaceMesh
    mandible: SurfaceMesh | None  # the mandible (also part of ``skull``) when the segmentation separated it
    segmentation: object  # medface.anatomy.ct_segmentation.Segmentation
    field_of_view: FieldOfView
    display: np.ndarray
    cut_ends: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def skull_input(self):
        """The skull ready for registration (:class:`~medface_forensic.skull_input.SkullInput`):
        size checks as for a mesh, the mandible as the segmentation separated it."""
        from .skull_input import prepare_skull

        sk = prepare_skull(self.skull, 1.0)
        if self.mandible is not None:
            sk.mandible = self.mandible
            extra = sk.components - 2
            note = f"{extra} further bone component(s) (teeth, fragments or vertebrae) are kept as skull points"
            sk.warnings = [note] if extra > 0 else []
        return sk

    def to_display(self, points: np.ndarray) -> np.ndarray:
        """Points of the CT's frame in the upright (anatomical) frame of the pictures."""
        o = self.field_of_view.origin
        return (np.asarray(points, float) - o) @ self.display.T + o

    def in_ct_frame(self, mesh: SurfaceMesh) -> SurfaceMesh:
        """A mesh of the segmentation (``segmentation.meshes``, e.g. the skin) in the CT's frame."""
        return _in_ct_frame(mesh, self.field_of_view.origin, self.display)

    def summary(self) -> dict:
        seg = self.segmentation
        c, o = seg.calibration, seg.orientation
        return {"calibration": "values in HU" if c.identity else f"hu = {c.slope:.4g} * value {c.intercept:+.4g} "
                f"(from the air and soft-tissue peaks)",
                "orientation": "from the file" if not o.estimated else
                f"not in the file: face towards {o.face}, top towards {o.superior} in index space (estimated "
                "from the skin relief; used for the pictures only, outputs stay in the file's frame)",
                "ct_mandible": "separated (" + seg.mandible_method + "), united with the skull"
                if "mandible" in seg.meshes else "not separated (it stays in the skull mesh)",
                "scan_cuts_bone_at": ", ".join(self.cut_ends) or "nowhere (the whole bone is inside the scan)",
                "bone_volume_ml": round(sum(v for k, v in seg.volumes_ml.items() if k != "skin"), 1)}


def _in_ct_frame(mesh: SurfaceMesh, origin: np.ndarray, display: np.ndarray) -> SurfaceMesh:
    return SurfaceMesh((mesh.vertices - origin) @ display + origin, mesh.faces, name=mesh.name)


def _unite(meshes: list[SurfaceMesh], name: str) -> SurfaceMesh:
    verts, faces, n = [], [], 0
    for m in meshes:
        verts.append(m.vertices)
        faces.append(m.faces + n)
        n += m.n_vertices
    return SurfaceMesh(np.concatenate(verts), np.concatenate(faces), name=name)


def drop_caps(mesh: SurfaceMesh, fov: FieldOfView, anatomical: np.ndarray) -> tuple[SurfaceMesh, list[str]]:
    """Remove the faces that close the bone where it runs into the ends of the volume; name
    those ends (``anatomical``: columns are the anatomical LPS directions of i, j, k)."""
    ijk = fov.index(mesh.vertices)
    lo, hi = ijk < CAP_VOXELS, ijk > fov.shape_ijk - 1 - CAP_VOXELS
    cap_face = np.zeros(mesh.n_faces, bool)
    ends = []
    for axis in range(3):
        for side, flag in (("low", lo[:, axis]), ("high", hi[:, axis])):
            at = flag[mesh.faces].all(1)
            if at.sum() < 20:
                continue
            cap_face |= at
            step = anatomical[:, axis] * (1 if side == "high" else -1)  # LPS direction of that end
            k = int(np.argmax(np.abs(step)))
            ends.append(_AXIS_NAMES[(k, int(np.sign(step[k])))])
    if not cap_face.any():
        return mesh, ends
    faces = mesh.faces[~cap_face]
    used, inverse = np.unique(faces.ravel(), return_inverse=True)
    return SurfaceMesh(mesh.vertices[used], inverse.reshape(-1, 3), name=mesh.name), ends


def skull_from_ct(volume: Volume, bone_hu: float | None = None, face_direction: str = "auto",
                  target_faces: int = TARGET_FACES) -> CTSkull:
    """Segment the bone of a head CT (:func:`~medface.anatomy.ct_segmentation.segment_ct`), unite
    skull and mandible into one mesh in the CT's own frame and remove the caps at the scan's
    ends (see the module notes)."""
    from medface.anatomy.ct_segmentation import segment_ct

    if not isinstance(volume, Volume):
        raise ParameterError(f"expected a CT volume, got {type(volume).__name__}", parameter="ct")
    seg = segment_ct(volume, bone_hu=bone_hu, target_faces=target_faces, face_direction=face_direction)
    fov = FieldOfView.of(volume)
    # segment_ct puts a CT without a stored orientation into an estimated anatomical frame
    # (face -y, top +z); back to the file's frame so the outputs overlay the CT
    file_dir = np.asarray(volume.direction, float)
    display = seg.orientation.direction @ file_dir.T
    o = fov.origin
    parts = [seg.meshes["skull"]] + ([seg.meshes["mandible"]] if "mandible" in seg.meshes else [])
    bone = _unite([_in_ct_frame(p, o, display) for p in parts], "skull from CT")
    bone.source = getattr(volume, "source", None)
    skull, cut = drop_caps(bone, fov, seg.orientation.direction)
    skull.source = bone.source
    mandible = None
    if "mandible" in seg.meshes:
        m = seg.meshes["mandible"]
        mandible, _ = drop_caps(_in_ct_frame(m, o, display), fov, seg.orientation.direction)
    warnings = [f"CT segmentation: {w}" for w in seg.warnings  # its orientation note is replaced below
                if not w.startswith("the file stores no orientation")]
    if seg.orientation.estimated:
        warnings.append(f"the CT stores no orientation: the face was found towards {seg.orientation.face} and the top "
                        f"of the head towards {seg.orientation.superior} in index space (from the skin relief); the "
                        "outputs stay in the file's own frame so they overlay the CT, and only the pictures are "
                        "turned upright")
    if cut:
        warnings.append(f"the scan cuts the bone at its {' and '.join(cut)} end{'s' if len(cut) > 1 else ''}: the "
                        "skull beyond is not observed")
    return CTSkull(skull, mandible, seg, fov, display, cut, warnings)
