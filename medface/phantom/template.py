"""The template head: meshes, landmarks and tissue fields of the average adult, built once.

Building takes a minute (signed-distance fields sampled on grids, marching cubes, landmark
search), so the result is cached in ``$MEDFACE_CACHE_DIR`` (default ``~/.cache/medface``)
under a key derived from the phantom's source code: change the anatomy and the cache renews
itself. Every subject is a smooth warp of this template, so all subjects share vertex
correspondence, and every landmark is stored as a point on a triangle (face index and
barycentric weights), exact on every warped mesh.
"""

from __future__ import annotations

import os
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import cache
from ..data.mesh import vertex_normals
from . import grid as G
from . import skin as K
from . import skull as B

MESH_SPACING = 1.5
SKIN_SPACING = 1.5
FIELD_SPACING = 1.5
BONE_LO, BONE_HI = np.array([-84.0, -118.0, -112.0]), np.array([84.0, 108.0, 132.0])
HEAD_LO, HEAD_HI = np.array([-96.0, -140.0, -146.0]), np.array([96.0, 116.0, 142.0])
_SOURCES = ("sdf.py", "grid.py", "skull.py", "skin.py")  # what the cached geometry depends on
CACHE_FORMAT = "4"

# soft-tissue landmarks over bony ones (tissue-depth pairs) and the direction of measurement
# (the lip margins ls and li are placed by their own definitions, not as depth points, so that
# lip shape and tissue depth do not fight over them):
# "normal" = the bone's outward normal (averaged over 6 mm, in the mid-sagittal plane for
# midline points), "anterior" = straight forward (-y), "lateral" = straight out (+-x), as the
# tissue-depth studies measure at those points (docs/phantom.md).
DEPTH_PAIRS = {"g_s": ("g", "normal"), "n_s": ("n", "normal"), "a_s": ("a", "anterior"), "sl": ("b", "anterior"),
               "pog_s": ("pog", "normal"), "me_s": ("me", "normal"), "or_s_l": ("or_l", "anterior"),
               "or_s_r": ("or_r", "anterior"), "zy_s_l": ("zy_l", "lateral"), "zy_s_r": ("zy_r", "lateral"),
               "go_s_l": ("go_l", "lateral"), "go_s_r": ("go_r", "lateral")}


def depth_direction(kind: str, bone_id: str, vertices: np.ndarray, normals: np.ndarray,
                    point: np.ndarray) -> np.ndarray:
    """Unit direction along which the tissue depth over ``bone_id`` is measured."""
    if kind == "anterior":
        return np.array([0.0, -1.0, 0.0])
    if kind == "lateral":
        return np.array([1.0 if point[0] >= 0 else -1.0, 0.0, 0.0])
    near = np.linalg.norm(vertices - point, axis=1) < 6.0
    n = normals[near].mean(axis=0) if near.any() else normals[int(np.argmin(np.linalg.norm(vertices - point, axis=1)))]
    if not (bone_id.endswith("_l") or bone_id.endswith("_r")):
        n[0] = 0.0
    return n / np.linalg.norm(n)


@dataclass
class SurfacePoint:
    """A landmark as a point on a mesh triangle: exact under any warp of the mesh."""

    mesh: str
    face: int
    weights: np.ndarray  # barycentric, sums to 1

    def position(self, vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
        return self.weights @ vertices[faces[self.face]]


@dataclass
class FreePoint:
    """A landmark that is not on a surface (sella: the centre of the pituitary fossa); it
    follows the subject's warp."""

    position_: np.ndarray
    mesh: str = "free"

    def position(self, vertices=None, faces=None) -> np.ndarray:
        return self.position_


# internal points, design frame: sella at the centre of a pituitary fossa on the cavity floor
FREE_POINTS = {"s": (0.0, -24.0, 18.0)}


@dataclass
class Template:
    meshes: dict[str, tuple[np.ndarray, np.ndarray]]  # name -> (vertices, faces), head frame
    landmarks: dict[str, SurfacePoint | FreePoint]
    fields: dict[str, G.Grid] = field(default_factory=dict)  # signed distances, design frame
    frame: np.ndarray = field(default_factory=lambda: np.eye(4))  # design frame -> head frame

    def sample_field(self, name: str, points: np.ndarray) -> np.ndarray:
        """Signed distance (mm) of a tissue at head-frame points."""
        inv = np.linalg.inv(self.frame)
        return self.fields[name].sample(points @ inv[:3, :3].T + inv[:3, 3])

    def landmark_positions(self, meshes: dict[str, tuple[np.ndarray, np.ndarray]] | None = None) -> dict:
        meshes = meshes or self.meshes
        return {k: (sp.position() if isinstance(sp, FreePoint) else sp.position(*meshes[sp.mesh]))
                for k, sp in self.landmarks.items()}


# ---------------------------------------------------------------------------------------------
# building
def _pick(v: np.ndarray, mask: np.ndarray, score: np.ndarray) -> np.ndarray:
    if not mask.any():
        raise RuntimeError("landmark search region is empty")
    idx = np.nonzero(mask)[0]
    return v[idx[int(np.argmax(score[idx]))]]


def _profile(v: np.ndarray, mask: np.ndarray, step: float = 0.75) -> np.ndarray:
    """Indices of the most anterior vertex in each height bin: the outer mid-sagittal profile."""
    idx = np.nonzero(mask)[0]
    bins = np.floor(v[idx, 2] / step).astype(int)
    out = []
    for b in np.unique(bins):
        members = idx[bins == b]
        out.append(members[int(np.argmin(v[members, 1]))])
    return np.array(out, int)


def _deepest(v: np.ndarray, mask: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The profile point between a and b farthest behind the chord a-b (A and B points)."""
    prof = _profile(v, mask)
    chord = (b - a)[1:] / np.linalg.norm((b - a)[1:])
    normal = np.array([-chord[1], chord[0]])  # perpendicular in (y, z)
    if normal[0] < 0:  # make it point posteriorly (+y)
        normal = -normal
    depth = (v[prof, 1:] - a[1:]) @ normal
    return v[prof[int(np.argmax(depth))]]


def _midline(v, tol=0.05):
    return np.abs(v[:, 0]) < tol


def _craniometric(cr: np.ndarray, md: np.ndarray, crn: np.ndarray, mdn: np.ndarray) -> dict[str, np.ndarray]:
    """Left-side and midline bony landmarks found on the template meshes by their definitions.

    ``crn`` and ``mdn`` are outward vertex normals: facial landmarks are searched among
    vertices facing forward, so that inner surfaces (nasal cavity, lingual side) never win.
    """
    x, y, z = cr[:, 0], cr[:, 1], cr[:, 2]
    mx, my, mz = md[:, 0], md[:, 1], md[:, 2]
    mid = _midline(cr) & (crn[:, 1] < -0.2)
    mmid = _midline(md) & (mdn[:, 1] < -0.2)
    front = y < -70
    L = {}
    L["g"] = _pick(cr, mid & (z > 28) & (z < 48), -y)
    L["n"] = _pick(cr, mid & front & (z > 14) & (z < 32), y)
    L["rhi"] = _pick(cr, mid & front & (z > -6) & (z < 12), -y - 0.5 * z)
    L["ans"] = _pick(cr, mid & front & (z > -32) & (z < -20), -y)
    L["pr"] = _pick(cr, mid & front & (z > -46) & (z < -38) & (y > -96), -z - 0.3 * y)
    L["a"] = _deepest(cr, mid & front & (crn[:, 1] < -0.6) & (z < L["ans"][2] - 2) & (z > L["pr"][2] + 2),
                      L["ans"], L["pr"])
    L["v"] = _pick(cr, _midline(cr) & (crn[:, 2] > 0.5), z)
    L["op"] = _pick(cr, _midline(cr) & (crn[:, 1] > 0.5) & (z > 0), y)
    L["id"] = _pick(md, mmid & (my < -78) & (mz > -68) & (mz < -58), mz - 0.2 * my)
    L["pog"] = _pick(md, mmid & (mz > -96) & (mz < -78), -my)
    L["b"] = _deepest(md, mmid & (mdn[:, 1] < -0.6) & (my < -70) & (mz < L["id"][2] - 3) & (mz > L["pog"][2] + 2),
                      L["id"], L["pog"])
    L["me"] = _pick(md, _midline(md) & (mdn[:, 2] < -0.5), -mz)
    L["gn"] = _pick(md, _midline(md) & (mdn[:, 1] + mdn[:, 2] < -0.8) & (mz < -80), -my - mz)
    left = (x > 0) & (crn[:, 0] > 0.2)
    L["eu_l"] = _pick(cr, left & (z > 15), x)
    L["zy_l"] = _pick(cr, left & (y > -50) & (y < -8) & (z > -14) & (z < 8), x)
    L["ms_l"] = _pick(cr, left & (x > 38) & (y > -2) & (y < 22), -z)
    # orbitale: the lowest point of the infraorbital margin (the rim crest, bin by bin)
    rim = (x > 0) & (crn[:, 2] > 0.3) & (x > 20) & (x < 44) & (y > -92) & (y < -70) & (z > -10) & (z < 8)
    crest = []
    for xb in np.arange(22, 42, 1.0):
        sel = rim & (np.abs(x - xb) < 0.75)
        if sel.any():
            crest.append(_pick(cr, sel, z))
    crest = np.array(crest)
    L["or_l"] = crest[np.argmin(crest[:, 2])]
    # porion: top of the external acoustic meatus where it opens on the lateral surface
    meatus_top = (x > 0) & (np.abs(y) < 2.5) & (z > -0.5) & (z < 2.5) & (x > 45)
    L["po_l"] = _pick(cr, meatus_top, x - 2 * np.abs(y))
    # frontotemporale: the point of minimum frontal breadth on the frontal bone
    band = left & (z > 42) & (z < 58) & (y > -86) & (y < -40)
    best = None
    for yb in np.arange(-80, -44, 2.0):
        sel = band & (np.abs(y - yb) < 1.0)
        if sel.any():
            p = _pick(cr, sel, x)
            if best is None or p[0] < best[0]:
                best = p
    L["ft_l"] = best
    L["go_l"] = _pick(md, (mx > 35) & (mdn[:, 0] > 0.2), my - mz)
    L["co_l"] = _pick(md, (mx > 35) & (my > -20), mz)
    L["cor_l"] = _pick(md, (mx > 30) & (my < -26), mz)
    # points defined on a margin or suture that the phantom does not model: nearest surface point
    for key, anchor in {"fmo_l": (44.0, -79.0, 20.0), "zm_l": (37.0, -74.0, -17.0), "apl_l": (12.5, -95.0, -14.0),
                        "ecm_l": (31.0, -52.0, -40.0), "d_l": (11.5, -84.0, 13.0)}.items():
        a = np.array(anchor)
        L[key] = cr[int(np.argmin(np.linalg.norm(cr - a, axis=1)))]
    return L


def _soft(sk: np.ndarray, skn: np.ndarray) -> dict[str, np.ndarray]:
    y, z = sk[:, 1], sk[:, 2]
    mid = _midline(sk) & (skn[:, 1] < -0.2)
    L = {}
    L["prn"] = _pick(sk, mid & (z > -30) & (z < 10), -y)
    L["sn"] = _pick(sk, mid & (y < -95) & (z > -30) & (z < -20), y + 0.2 * z)
    # stomion: where the lips meet in the midline, at the front opening of the mouth line
    L["sto"] = _pick(sk, mid & (y < -90) & (np.abs(z + 50.5) < 1.0), -y)
    # lip margins: the phantom has no coloured vermilion, so the vermilion borders are placed on
    # the mid-sagittal profile at the mean vermilion heights above and below stomion
    # (upper 8.5 mm, lower 9.5 mm; tables.ANTHROPOMETRY)
    prof = _profile(sk, mid & (z < L["sn"][2]) & (z > L["sto"][2] - 20), step=0.5)
    for key, height in (("ls", 8.5), ("li", -9.5)):
        zt = L["sto"][2] + height
        L[key] = sk[prof[int(np.argmin(np.abs(sk[prof, 2] - zt)))]]
    L["v_s"] = _pick(sk, _midline(sk), z)
    L["op_s"] = _pick(sk, _midline(sk) & (skn[:, 1] > 0.5) & (z > 0), y)
    for key, anchor in {"al_l": (18.5, -108.0, -19.0), "en_l": (16.5, -93.0, 8.5), "ex_l": (46.0, -88.0, 11.5), "ch_l": (25.0, -100.0, -50.5),
                        "t_l": (66.0, -7.0, 1.0)}.items():
        a = np.array(anchor)
        L[key] = sk[int(np.argmin(np.linalg.norm(sk - a, axis=1)))]
    # trichion: the midline forehead point 55 mm above the skin over glabella (an assumed hairline height)
    g_s = _pick(sk, mid & (z > 28) & (z < 48), -y)
    L["tr"] = _pick(sk, mid & (np.abs(z - (g_s[2] + 55.0)) < 1.0), -y)
    # palpebrale superius: the front of the closed upper lid just above the lid line (eye centre x 31.5, z 11)
    L["ps_l"] = _pick(sk, (np.abs(sk[:, 0] - 31.5) < 2.0) & (z > 11.0) & (z < 13.5) & (y < -84), -y)
    return L


def _mirror_to(v: np.ndarray, point: np.ndarray) -> np.ndarray:
    m = point * np.array([-1.0, 1.0, 1.0])
    return v[int(np.argmin(np.linalg.norm(v - m, axis=1)))]


def build_geometry() -> tuple[dict, dict]:
    """Sample the fields and extract the meshes, in the design frame (about two minutes)."""
    cr_grid = G.sample_banded(B.cranium, BONE_LO, BONE_HI, MESH_SPACING)
    md_grid = G.sample_banded(B.mandible, BONE_LO, BONE_HI, MESH_SPACING)
    sk_grid = K.skin_grid(SKIN_SPACING, HEAD_LO, HEAD_HI, support_spacing=1.5)
    meshes = {"cranium": G.extract_surface(cr_grid), "mandible": G.extract_surface(md_grid),
              "skin": G.extract_surface(sk_grid)}
    meshes = {k: _largest_component(*v) for k, v in meshes.items()}
    fields = {
        "cranium": cr_grid, "mandible": md_grid, "skin": sk_grid,
        "teeth": _field(lambda p: np.minimum(B.upper_teeth(p), B.lower_teeth(p)), BONE_LO, BONE_HI),
        "brain": _field(lambda p: B.brain_cavity(p, B.vault_outer(p)), BONE_LO, BONE_HI),
        "eyes": _field(K.eyes, BONE_LO, BONE_HI),
        "support": _field(K.support, HEAD_LO, HEAD_HI),
    }
    return meshes, fields


def place_landmarks(meshes: dict) -> tuple[dict, dict, np.ndarray]:
    """Find every landmark on the design-frame meshes, then move all to the Frankfurt frame.

    Returns (landmarks, meshes in the head frame, design-to-head transform).
    """
    cr, md, sk = (meshes[k][0] for k in ("cranium", "mandible", "skin"))
    bony = _craniometric(cr, md, vertex_normals(*meshes["cranium"]), vertex_normals(*meshes["mandible"]))
    on_mandible = {"id", "b", "pog", "me", "gn", "go_l", "co_l", "cor_l"}
    points: dict = {}
    for key, pos in list(bony.items()):
        mesh = "mandible" if key in on_mandible else "cranium"
        v, f = meshes[mesh]
        points[key] = _vertex_point(mesh, v, f, pos)
        if key.endswith("_l"):
            points[key[:-2] + "_r"] = _vertex_point(mesh, v, f, _mirror_to(v, pos))
    sv, sf = meshes["skin"]
    for key, pos in _soft(sk, vertex_normals(sv, sf)).items():
        points[key] = _vertex_point("skin", sv, sf, pos)
        if key.endswith("_l"):
            points[key[:-2] + "_r"] = _vertex_point("skin", sv, sf, _mirror_to(sv, pos))
    frame = frankfurt_frame({k: sp.position(*meshes[sp.mesh]) for k, sp in points.items()})
    meshes = {k: (v @ frame[:3, :3].T + frame[:3, 3], f) for k, (v, f) in meshes.items()}
    for key, pos in FREE_POINTS.items():
        points[key] = FreePoint(frame[:3, :3] @ np.array(pos) + frame[:3, 3])
    # soft-tissue landmarks over bony ones, in the Frankfurt frame
    sv, sf = meshes["skin"]
    for soft, (bone, kind) in DEPTH_PAIRS.items():
        sp = points[bone]
        v, f = meshes[sp.mesh]
        origin = sp.position(v, f)
        near = np.nonzero(np.linalg.norm(v - origin, axis=1) < 9.0)[0]
        direction = depth_direction(kind, bone, v[near], vertex_normals(v, f)[near], origin)
        tri, hit, bary = ray_hit(sv, sf, origin, direction)
        points[soft] = SurfacePoint("skin", tri, bary)
    return points, meshes, frame


def build() -> Template:
    meshes, fields = build_geometry()
    points, meshes, frame = place_landmarks(meshes)
    return Template(meshes, points, fields, frame)


def _vertex_point(mesh: str, v: np.ndarray, f: np.ndarray, pos: np.ndarray) -> SurfacePoint:
    """A landmark that sits on a vertex: one incident triangle with one-hot weights."""
    vid = int(np.argmin(np.linalg.norm(v - pos, axis=1)))
    rows, cols = np.nonzero(f == vid)
    w = np.zeros(3)
    w[cols[0]] = 1.0
    return SurfacePoint(mesh, int(rows[0]), w)


def ray_hit(v: np.ndarray, f: np.ndarray, origin: np.ndarray, direction: np.ndarray, reach: float = 80.0,
            centroids: np.ndarray | None = None):
    """First intersection of a ray with a triangle mesh (Moller-Trumbore on nearby triangles).

    Returns (triangle index, point, barycentric weights)."""
    direction = direction / np.linalg.norm(direction)
    centroids = v[f].mean(axis=1) if centroids is None else centroids
    rel = centroids - origin
    along = rel @ direction
    perp = np.linalg.norm(rel - along[:, None] * direction, axis=1)
    cand = np.nonzero((along > -5) & (along < reach) & (perp < 6.0))[0]
    a, b, c = (v[f[cand, i]] for i in range(3))
    e1, e2 = b - a, c - a
    pvec = np.cross(direction, e2)
    det = (e1 * pvec).sum(1)
    ok = np.abs(det) > 1e-12
    inv = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
    tvec = origin - a
    u = (tvec * pvec).sum(1) * inv
    qvec = np.cross(tvec, e1)
    w = (qvec * direction).sum(1) * inv
    t = (e2 * qvec).sum(1) * inv
    hit = ok & (u >= 0) & (w >= 0) & (u + w <= 1) & (t > 1e-9)
    if not hit.any():
        raise RuntimeError(f"ray from {origin} along {direction} misses the mesh")
    k = np.nonzero(hit)[0][int(np.argmin(t[hit]))]
    bary = np.array([1 - u[k] - w[k], u[k], w[k]])
    return int(cand[k]), origin + t[k] * direction, bary


def frankfurt_frame(lm: dict[str, np.ndarray]) -> np.ndarray:
    """Rigid transform putting both porions and the left orbitale on z = 0, porions' midpoint at
    the origin, keeping the mid-sagittal plane at x = 0 (the template is symmetric)."""
    po = 0.5 * (lm["po_l"] + lm["po_r"])
    d = lm["or_l"] - po
    angle = np.arctan2(d[2], -d[1])  # tilt of po->or in the y-z plane (anterior is -y)
    c, s_ = np.cos(angle), np.sin(angle)
    rot = np.array([[1, 0, 0], [0, c, -s_], [0, s_, c]])
    m = np.eye(4)
    m[:3, :3] = rot
    m[:3, 3] = -rot @ po
    check = rot @ (lm["or_l"] - po)
    if abs(check[2]) > 1e-6:
        rot = rot.T
        m[:3, :3] = rot
        m[:3, 3] = -rot @ po
    return m


def _largest_component(v: np.ndarray, f: np.ndarray):
    """Drop tiny islands that marching cubes can leave; keep components over 1 % of the faces."""
    import trimesh

    tm = trimesh.Trimesh(v, f, process=False)
    parts = tm.split(only_watertight=False)
    if len(parts) <= 1:
        return v, f
    keep = [p for p in parts if len(p.faces) > 0.01 * len(f)]
    merged = trimesh.util.concatenate(keep)
    return np.asarray(merged.vertices, float), np.asarray(merged.faces, np.int64)


def _field(sdf, lo, hi) -> G.Grid:
    return G.sample_banded(sdf, lo, hi, FIELD_SPACING)


# ---------------------------------------------------------------------------------------------
# caching
def _cache_key() -> str:
    """The template geometry depends on its format and on the sources that build it, only."""
    here = Path(__file__).parent
    return cache.key(CACHE_FORMAT, *(here / name for name in _SOURCES))


def cache_dir() -> Path:
    """Kept for callers of earlier versions: the cache root (:func:`medface.cache.cache_root`)."""
    return cache.cache_root()


def _save(meshes: dict, fields: dict, path: Path) -> None:
    arrays = {}
    for name, (v, f) in meshes.items():
        arrays[f"mesh/{name}/v"], arrays[f"mesh/{name}/f"] = v, f
    for name, g in fields.items():
        arrays[f"field/{name}/values"] = g.values
        arrays[f"field/{name}/geom"] = np.concatenate([g.origin, [g.spacing]])
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz")
    os.close(fd)
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, path)


def _load(path: Path) -> tuple[dict, dict]:
    data = np.load(path)
    meshes, fields = {}, {}
    for key in data.files:
        parts = key.split("/")
        if parts[0] == "mesh" and parts[2] == "v":
            meshes[parts[1]] = (data[key], data[f"mesh/{parts[1]}/f"])
        elif parts[0] == "field" and parts[2] == "values":
            geom = data[f"field/{parts[1]}/geom"]
            fields[parts[1]] = G.Grid(data[key], geom[:3], float(geom[3]))
    return meshes, fields


_LOCK = threading.Lock()
_TEMPLATE: Template | None = None


def get_template() -> Template:
    """The template of this process: from the cache when fresh, else built and cached."""
    global _TEMPLATE
    with _LOCK:
        if _TEMPLATE is None:
            path = cache_dir() / f"phantom-geometry-{_cache_key()}.npz"
            geometry = None
            with cache.file_lock(path.with_suffix(".lock")):  # one process builds, the others wait
                if path.is_file():
                    try:
                        geometry = _load(path)
                    except (OSError, ValueError, KeyError):
                        geometry = None
                if geometry is None:
                    geometry = build_geometry()
                    try:
                        _save(*geometry, path)
                    except OSError:
                        pass  # a read-only home still works, only slower
            meshes, fields = geometry
            points, meshes, frame = place_landmarks(meshes)
            _TEMPLATE = Template(meshes, points, fields, frame)
        return _TEMPLATE
