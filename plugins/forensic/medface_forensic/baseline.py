"""The baselines a reconstruction must beat: tissue-depth pegs with a fitted face template, and
the skull pushed out by one constant depth.

This is the computerised version of the manual "tissue-depth pegs" method that generative
models are measured against (Claes et al. 2010 use the same comparison):

1. at every craniometric landmark that has a soft-tissue depth in the table
   (:data:`medface.phantom.tables.TISSUE_DEPTHS`: 15 sites, four of them bilateral), the
   literature prior's mean depth for the given sex, age and BMI
   (:func:`.tissue_prior.site_thickness`: the table's pooled mean with the published
   male-female differences and the age and BMI slopes) is placed along the outward bone normal
   (the mean vertex normal within ``NORMAL_RADIUS_MM`` of the landmark);
2. the face template (the training mean face of the shape model, placed on the skull by the
   cranium's rigid Procrustes fit) is warped by a thin-plate spline so that its points over
   those landmarks land on the pegs; the rest of the face follows smoothly.

The simpler **constant-offset** baseline (:func:`constant_offset_face`) puts every face vertex
one fixed depth from the bone: the population's typical facial soft-tissue thickness
(:func:`typical_face_depth`, from the template head, not from any case). A method that cannot beat
it has learned nothing about faces beyond their average thickness.

Without the mandible the lower-face pegs are missing and the template's lower face only
follows the upper face. The pooled means are the phantom's table (``docs/phantom-references.md``
says which values are sourced and which are assumptions), the sex differences and their sources
are :mod:`.tissue_prior`'s (``docs/forensic_tissue_prior.md``); the phantom training faces
follow the same prior on average, which favours the baseline on phantom subjects.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from scipy.spatial import cKDTree

from medface.data.mesh import vertex_normals

NORMAL_RADIUS_MM = 4.0
PEG_TOLERANCE_MM = 2.5
SMOOTHING = 1.0  # thin-plate spline smoothing (mm^2 scale): pegs are means, not exact points


@dataclass(frozen=True)
class Site:
    """One depth peg: a bony landmark on the cranium or mandible of the template, the vertex
    neighbourhood that gives its normal, and the template skin vertex above it."""

    table_id: str  # the table's bony id (left side for bilateral sites)
    landmark: str  # the landmark id on this side
    on_mandible: bool
    vertex: int
    neighbours: np.ndarray
    skin_vertex: int
    faces: np.ndarray  # the template triangles around ``neighbours`` (enough for their normals)


def _mirror(lid: str) -> str:
    return lid[:-2] + "_r" if lid.endswith("_l") else lid


@lru_cache(maxsize=1)
def template_sites() -> tuple[Site, ...]:
    """The pegs on the phantom template (the topology of the default shape model)."""
    from medface.phantom.tables import TISSUE_DEPTHS, tissue_depth

    from .template import template_head

    head = template_head()
    lm = {k: np.asarray(v, float) for k, v in head.landmarks.items()}
    meshes = {False: head.cranium, True: head.mandible}
    normals = {k: vertex_normals(m.vertices, m.faces) for k, m in meshes.items()}
    skin_tree = cKDTree(head.skin.vertices)
    sites = []
    for entry in TISSUE_DEPTHS:
        if not entry.bony_id:
            continue
        sides, gaps = [], []
        for lid in (entry.bony_id, _mirror(entry.bony_id)) if entry.bilateral else (entry.bony_id,):
            if lid not in lm:
                continue
            d = {k: np.linalg.norm(m.vertices - lm[lid], axis=1) for k, m in meshes.items()}
            on_mand = bool(d[True].min() < d[False].min())
            dist = d[on_mand]
            vertex = int(np.argmin(dist))
            near = np.flatnonzero(dist < NORMAL_RADIUS_MM)
            n = normals[on_mand][near].mean(0)
            n /= np.linalg.norm(n)
            depth = tissue_depth(entry.bony_id, head.subject.sex, head.subject.age, head.subject.bmi)[0]
            # the template skin vertex under the template's own peg
            gap, skin_vertex = skin_tree.query(meshes[on_mand].vertices[vertex] + depth * n)
            around = meshes[on_mand].faces[np.isin(meshes[on_mand].faces, near).any(1)]
            sides.append(Site(entry.bony_id, lid, on_mand, vertex, near, int(skin_vertex), around))
            gaps.append(gap)
        # a site whose pegs do not land on the template's skin (the table's depth or its
        # direction does not fit the template there) is left out, both sides together
        if sides and np.mean(gaps) <= PEG_TOLERANCE_MM:
            sites += sides
    return tuple(sites)


def peg_depth(table_id: str, sex: str | None = None, age: float | None = None, bmi: float | None = None) -> float:
    """The baseline's depth (mm) at a site: the literature prior's mean for this sex ("F", "M",
    None or "unknown": the pooled mean), age and BMI (:func:`.tissue_prior.site_thickness`)."""
    from .tissue_prior import site_thickness

    return site_thickness(table_id, sex, age, bmi)


def pegs(cranium: np.ndarray, mandible: np.ndarray | None, *, sex: str | None = None, age: float | None = None,
         bmi: float | None = None) -> tuple[list[Site], np.ndarray]:
    """The sites usable on this skull and their peg positions (bone point + mean depth x normal);
    the depth is the tissue prior's mean for the sex, age and BMI (:func:`peg_depth`)."""

    verts = {False: np.asarray(cranium, np.float64), True: None if mandible is None else np.asarray(mandible, float)}
    used, points = [], []
    for site in template_sites():
        v = verts[site.on_mandible]
        if v is None:
            continue
        n = vertex_normals(v, site.faces, at=site.neighbours).mean(0)
        n /= np.linalg.norm(n)
        depth = peg_depth(site.table_id, sex, age, bmi)
        used.append(site)
        points.append(v[site.vertex] + depth * n)
    return used, np.array(points)


def tissue_depth_face(model, cranium, mandible=None, *, sex: str | None = None, age: float | None = None,
                      bmi: float | None = None) -> np.ndarray:
    """The baseline face (n_skin, 3) in mm, in the skull's frame (see the module docstring).

    ``cranium`` and ``mandible`` are vertex arrays in correspondence with the phantom template
    (as registration or the phantom gives them); ``model`` supplies the face template."""
    from scipy.interpolate import RBFInterpolator

    start = model.baseline_face(cranium)
    sites, targets = pegs(cranium, mandible, sex=sex, age=age, bmi=bmi)
    if len(sites) < 4:
        return start
    idx = np.array([s.skin_vertex for s in sites])
    warp = RBFInterpolator(start[idx], targets - start[idx], kernel="thin_plate_spline", smoothing=SMOOTHING)
    return start + warp(start)


class TissueDepthFaces:
    """:func:`tissue_depth_face` of one skull for any sex, age and BMI, fast (a live panel's frame).

    The thin-plate spline's coefficients are linear in the pegs' offsets, so its warp of the
    template is a fixed linear map of them: the placed template, the usable sites and that map
    (n_skin x sites) are computed once here, and each :meth:`face` is the pegs for its covariates
    and one matrix product, the same face as :func:`tissue_depth_face` up to rounding."""

    def __init__(self, model, cranium, mandible=None):
        from scipy.interpolate import RBFInterpolator

        self.cranium, self.mandible = cranium, mandible
        self.start = model.baseline_face(cranium)
        sites, _ = pegs(cranium, mandible)  # which sites a skull has does not depend on the covariates
        self.skin_vertices = np.array([s.skin_vertex for s in sites], dtype=np.int64)
        self.warp = None
        if len(sites) >= 4:
            unit_offsets = RBFInterpolator(self.start[self.skin_vertices], np.eye(len(sites)),
                                           kernel="thin_plate_spline", smoothing=SMOOTHING)
            self.warp = unit_offsets(self.start)

    def face(self, *, sex: str | None = None, age: float | None = None, bmi: float | None = None) -> np.ndarray:
        """The baseline face (n_skin, 3) in mm for these covariates (see :func:`tissue_depth_face`)."""
        if self.warp is None:
            return self.start
        _, targets = pegs(self.cranium, self.mandible, sex=sex, age=age, bmi=bmi)
        return self.start + self.warp @ (targets - self.start[self.skin_vertices])


@lru_cache(maxsize=1)
def typical_face_depth() -> float:
    """The median soft-tissue thickness (mm) over the face region of the template head (skin
    vertex to nearest bone vertex): the constant of :func:`constant_offset_face`."""
    from .metrics import face_regions
    from .template import template_head
    from .tissue_prior import template_thickness

    head = template_head()
    face = face_regions(head.skin.vertices, head.skin.faces, head.landmarks)["face"]
    return float(np.median(template_thickness()[face]))


def constant_offset_face(model, cranium, mandible=None, *, depth_mm: float | None = None) -> np.ndarray:
    """The constant-offset baseline (n_skin, 3) in mm, in the skull's frame: each vertex of the
    training mean face (placed on the skull by the cranium's rigid fit, as the tissue-depth face
    starts) moved along the line from its nearest bone vertex to lie exactly ``depth_mm``
    (default :func:`typical_face_depth`) from it: the skull pushed out by one depth."""
    depth = typical_face_depth() if depth_mm is None else float(depth_mm)
    start = model.baseline_face(cranium)
    bone = np.asarray(cranium, np.float64)
    if mandible is not None:
        bone = np.concatenate([bone, np.asarray(mandible, np.float64)])
    dist, idx = cKDTree(bone).query(start)
    direction = start - bone[idx]
    normals = vertex_normals(start, model.skin_faces)
    on_bone = dist < 1e-6  # no direction from the bone: the face's own normal
    direction[on_bone] = normals[on_bone]
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    return bone[idx] + depth * direction
