"""Comparing soft-tissue predictions, facial regions, and the phantom surgery case.

:func:`compare` measures how far two predicted skins (same vertex order) lie apart, per region:
mean absolute distance, 90th percentile and the share of vertices within 2 mm (the usual
clinical tolerance in soft-tissue prediction studies, e.g. Mollemans et al. 2007).
:func:`face_regions` splits the face into thirds by soft-tissue landmarks. :func:`phantom_case`
builds an orthognathic case on the phantom's sample meshes (a simple Le Fort I box split of the
cranium; the real osteotomy tooling is :mod:`.cutting`).
"""

from __future__ import annotations

import numpy as np

from medface.data import SurfaceMesh
from medface.errors import InputError


def compare(pred_a: np.ndarray, pred_b: np.ndarray, skin: SurfaceMesh, regions=None, *, tolerance: float = 2.0) -> dict:
    """Distances (mm) between two predictions of ``skin``'s vertices, overall and per region.

    ``regions``: None (all vertices) or a dict name -> boolean mask or index array. Returns a
    dict name -> {"n", "mean_mm", "p90_mm", "max_mm", "within_2mm_pct"}.
    """
    a = np.asarray(pred_a, float)
    b = np.asarray(pred_b, float)
    if a.shape != b.shape or a.shape != skin.vertices.shape:
        raise InputError(f"predictions must both have the skin's shape {skin.vertices.shape}, "
                         f"got {a.shape} and {b.shape}")
    d = np.linalg.norm(a - b, axis=1)
    regions = {"all": np.ones(len(d), bool)} if regions is None else regions
    out = {}
    for name, sel in regions.items():
        sel = np.asarray(sel)
        x = d[sel]
        if x.size == 0:
            out[name] = {"n": 0, "mean_mm": float("nan"), "p90_mm": float("nan"), "max_mm": float("nan"),
                         "within_2mm_pct": float("nan")}
            continue
        out[name] = {"n": int(x.size), "mean_mm": float(x.mean()), "p90_mm": float(np.percentile(x, 90)),
                     "max_mm": float(x.max()), "within_2mm_pct": float(100.0 * np.mean(x <= tolerance))}
    return out


def face_regions(skin: SurfaceMesh, landmarks) -> dict[str, np.ndarray]:
    """Boolean masks of the face and its thirds from soft-tissue landmarks, in the head frame of
    the craniometric landmarks when they allow one (else LPS: +z superior, -y anterior). Face: anterior to the tragi (``t_l``, ``t_r``), from 10 mm below soft-tissue
    menton (``me_s``) to 25 mm above soft-tissue glabella (``g_s``). Upper: above soft-tissue
    nasion (``n_s``); mid: subnasale (``sn``) to ``n_s``; lower: below ``sn``."""
    need = ["t_l", "t_r", "me_s", "g_s", "n_s", "sn"]
    missing = [k for k in need if landmarks.get(k) is None]
    if missing:
        raise InputError(f"landmarks {missing} are needed to split the face into regions")
    p = {k: np.asarray(landmarks.get(k), float) for k in need}
    v = skin.vertices
    try:  # in the head's own frame (left, posterior, superior), whatever the scan's orientation
        from medface.anatomy.cephalometry import head_frame

        frame = head_frame(landmarks)
        v = frame.to_frame(v)
        p = {k: frame.to_frame(x) for k, x in p.items()}
    except InputError:
        pass  # too few craniometric landmarks for a frame: the scan's LPS axes are used
    face = ((v[:, 1] < min(p["t_l"][1], p["t_r"][1])) & (v[:, 2] > p["me_s"][2] - 10.0)
            & (v[:, 2] < p["g_s"][2] + 25.0))
    return {
        "face": face,
        "upper": face & (v[:, 2] >= p["n_s"][2]),
        "mid": face & (v[:, 2] < p["n_s"][2]) & (v[:, 2] >= p["sn"][2]),
        "lower": face & (v[:, 2] < p["sn"][2]),
    }


def le_fort_box_split(skull: SurfaceMesh, *, z_cut: float, y_back: float) -> tuple[SurfaceMesh, SurfaceMesh]:
    """(cranium, maxilla): the skull split by a box below ``z_cut`` and anterior to ``y_back``
    (LPS mm), with manifold3d booleans, both watertight."""
    import trimesh

    b = skull.bounds()
    box = trimesh.creation.box(bounds=[[b[0, 0] - 5, b[0, 1] - 5, b[0, 2] - 5], [b[1, 0] + 5, y_back, z_cut]])
    sk = skull.to_trimesh()
    maxilla = trimesh.boolean.intersection([sk, box], engine="manifold")
    cranium = trimesh.boolean.difference([sk, box], engine="manifold")
    return (SurfaceMesh.from_trimesh(cranium, name="cranium"), SurfaceMesh.from_trimesh(maxilla, name="maxilla"))


def translation(dx=0.0, dy=0.0, dz=0.0) -> np.ndarray:
    m = np.eye(4)
    m[:3, 3] = (dx, dy, dz)
    return m


def phantom_case(sample_dir, *, skin_vertices: int | None = None):
    """The phantom orthognathic case: segments {cranium, maxilla, mandible}, the skin (decimated
    or subdivided towards ``skin_vertices`` if given), landmarks, and the moves of a bimaxillary
    advancement (maxilla 3 mm and mandible 5 mm forward, i.e. towards -y in LPS)."""
    from pathlib import Path

    from medface.io import read_landmarks, read_mesh

    sample_dir = Path(sample_dir)
    skull = read_mesh(sample_dir / "skull.ply")
    mandible = read_mesh(sample_dir / "mandible.ply")
    skin = read_mesh(sample_dir / "skin.ply")
    landmarks = read_landmarks(sample_dir / "landmarks.mrk.json")
    # Le Fort I level: 4 mm above anterior nasal spine, back to 15 mm in front of the pterygoid region
    ans = np.asarray(landmarks.get("ans"), float)
    cranium, maxilla = le_fort_box_split(skull, z_cut=float(ans[2]) + 4.0, y_back=-15.0)
    if skin_vertices is not None:
        skin = resample_skin(skin, skin_vertices)
    segments = {"cranium": cranium, "maxilla": maxilla, "mandible": mandible}
    moves = {"maxilla": translation(dy=-3.0), "mandible": translation(dy=-5.0)}
    return segments, skin, landmarks, moves


def resample_skin(skin: SurfaceMesh, target: int) -> SurfaceMesh:
    """A watertight skin with about ``target`` vertices (quadric decimation or loop subdivision)."""
    import pyvista as pv

    poly = skin.to_pyvista()
    if target < skin.n_vertices:
        poly = poly.decimate(1.0 - target / skin.n_vertices)
    elif target > skin.n_vertices:
        while poly.n_points < target:
            poly = poly.subdivide(1, "loop")
    out = SurfaceMesh.from_pyvista(pv.PolyData(poly), name="skin")
    return out


def two_sphere_case(radius: float = 25.0, bone_radius: float = 7.0, offset: float = 10.0):
    """Synthetic geometry for checks: a skin sphere enclosing a fixed bone sphere (at -x) and a
    moving bone sphere (at +x); the moving one advances 2 mm towards -y (anterior)."""
    import trimesh

    skin = SurfaceMesh.from_trimesh(trimesh.creation.icosphere(4, radius=radius), name="skin")
    fixed = trimesh.creation.icosphere(3, radius=bone_radius)
    fixed.apply_translation([-offset, 0, 0])
    moving = trimesh.creation.icosphere(3, radius=bone_radius)
    moving.apply_translation([offset, 0, 0])
    segments = {"fixed": SurfaceMesh.from_trimesh(fixed, name="fixed"),
                "moving": SurfaceMesh.from_trimesh(moving, name="moving")}
    return segments, skin, {"moving": translation(dy=-2.0)}


def convergence_study(spacings=(6.0, 4.5, 3.0), reference: float = 2.0, *, nu: float = 0.45, case=None) -> list[dict]:
    """Skin displacement error of the FEM at grid spacings ``spacings`` against a ``reference``
    spacing, on :func:`two_sphere_case`: RMS and maximum vertex error (mm), relative RMS."""
    from .fem import SoftTissueModel

    segments, skin, moves = case if case is not None else two_sphere_case()

    def run(h):
        model = SoftTissueModel(segments, skin, h=h, nu=nu, fixed=["fixed"])
        return model.predict_displacement(moves), model.info()

    ref, ref_info = run(reference)
    rows = []
    for h in list(spacings):
        u, info = run(h)
        err = np.linalg.norm(u - ref, axis=1)
        rows.append({"h_mm": h, "nodes": info["nodes"], "tets": info["tets"], "free_dofs": info["free_dofs"],
                     "rms_error_mm": float(np.sqrt(np.mean(err ** 2))), "max_error_mm": float(err.max()),
                     "relative_rms": float(np.sqrt(np.mean(err ** 2)) / np.sqrt(np.mean(np.sum(ref ** 2, axis=1))))})
    rows.append({"h_mm": reference, "nodes": ref_info["nodes"], "tets": ref_info["tets"],
                 "free_dofs": ref_info["free_dofs"], "rms_error_mm": 0.0, "max_error_mm": 0.0, "relative_rms": 0.0,
                 "reference": True})
    return rows


# orthognathic procedures on the sample head: soft-to-hard tissue movement ratios ---------------
#: soft-tissue landmark -> the bone (hard-tissue) landmark whose movement it is set against,
#: as the orthognathic literature pairs them (e.g. Joss et al. 2010; San Miguel Moragas et al. 2014)
SOFT_HARD_PAIRS = {"prn": "a", "sn": "a", "a_s": "a", "ls": "pr", "sto": "pr", "li": "id", "sl": "b",
                   "pog_s": "pog", "me_s": "me"}
#: the four single-jaw procedures of the literature table: preset, advance (mm, + forward)
PROCEDURE_CASES = {"le_fort_i_advance": ("le_fort_i", 5.0), "bsso_advance": ("bsso", 5.0),
                   "bsso_setback": ("bsso", -5.0), "genioplasty_advance": ("genioplasty", 5.0)}


def procedure_case(sample_dir, procedure: str):
    """(pieces, fixed, skin, landmarks, planned) of one of :data:`PROCEDURE_CASES` on the sample
    head, through the plan presets, cutting and moves of ``surgery simulate``."""
    from pathlib import Path

    from medface.io import read_landmarks, read_mesh

    from .plan import SurgeryPlan
    from .simulation import tissue_segments

    sample_dir = Path(sample_dir)
    bones = {"cranium": read_mesh(sample_dir / "skull.ply"), "mandible": read_mesh(sample_dir / "mandible.ply")}
    skin = read_mesh(sample_dir / "skin.ply")
    landmarks = read_landmarks(sample_dir / "landmarks.mrk.json")
    preset, advance = PROCEDURE_CASES[procedure]
    plan = SurgeryPlan.from_preset(preset, landmarks, advance=advance)
    planned = plan.apply(bones)
    pieces, fixed = tissue_segments(bones, planned)
    return pieces, fixed, skin, landmarks, planned


def landmark_ratios(skin: SurfaceMesh, predicted: np.ndarray, landmarks, planned, *, frame=None) -> dict:
    """Per soft-tissue landmark of :data:`SOFT_HARD_PAIRS`: its anterior movement (mm, at the
    nearest skin vertex), the anterior movement of its bone landmark, and their ratio."""
    from scipy.spatial import cKDTree

    from medface.anatomy.cephalometry import head_frame

    frame = head_frame(landmarks) if frame is None else frame
    tree = cKDTree(skin.vertices)
    out = {}
    for soft, hard in SOFT_HARD_PAIRS.items():
        p = landmarks.get(soft)
        if p is None or landmarks.get(hard) is None or hard not in (planned.landmarks or {}):
            continue
        _, i = tree.query(np.asarray(p, float))
        before, after = frame.to_frame(skin.vertices[i][None])[0], frame.to_frame(predicted[i][None])[0]
        hb = frame.to_frame(np.asarray(landmarks.get(hard), float)[None])[0]
        ha = frame.to_frame(np.asarray(planned.landmarks[hard], float)[None])[0]
        soft_mm, hard_mm = -(after[1] - before[1]), -(ha[1] - hb[1])  # anterior is -y in the head frame
        out[soft] = {"hard": hard, "soft_mm": float(soft_mm), "hard_mm": float(hard_mm),
                     "ratio": float(soft_mm / hard_mm) if abs(hard_mm) > 0.5 else float("nan")}
    return out


def procedure_response(sample_dir, procedure: str, *, h: float, roi: float | None, nu: float = 0.45,
                       element: str = "bbar", mesher: str = "fitted", solver: str = "direct", case=None,
                       resolve_gaps: bool = False) -> dict:
    """Soft-to-hard ratios of the FEM and the preview for one procedure at one mesh, with the
    FEM's counts and timings (one plan: no precomputed response; ``resolve_gaps``: the saw's gaps
    meshed finer, as `surgery simulate` does)."""
    import time

    from .fem import SoftTissueModel
    from .preview import RigidBlendPreview
    from .simulation import saw_gaps

    pieces, fixed, skin, landmarks, planned = case if case is not None else procedure_case(sample_dir, procedure)
    t0 = time.perf_counter()
    model = SoftTissueModel(h=h, nu=nu, roi=roi, element=element, mesher=mesher, solver=solver,
                            precompute=False, resolve_gaps=saw_gaps(planned, pieces) if resolve_gaps else False
                            ).setup(pieces, skin, fixed)
    fem = model.solve_direct(planned.transforms)
    seconds = time.perf_counter() - t0
    preview = RigidBlendPreview(pieces, skin, fixed=fixed).update(planned)
    return {"procedure": procedure, "h_mm": h, "roi_mm": roi, "nu": nu, "element": element, "mesher": mesher,
            "resolve_gaps": resolve_gaps,
            "seconds": seconds, "info": model.info(), "fem": landmark_ratios(skin, fem, landmarks, planned),
            "preview": landmark_ratios(skin, preview, landmarks, planned)}


# an exact solution: the thick-walled sphere ----------------------------------------------------
def solve_with_dirichlet(k, u: np.ndarray, free: np.ndarray, hanging: np.ndarray, tie, factorize) -> np.ndarray:
    """The nodal field (3n,) with its ``free`` nodes solved from the others' values in ``u``
    (stiffness ``k``, 3n x 3n); a graded mesh's ``hanging`` nodes follow their masters through
    ``tie`` (:meth:`TissueMesh.constraint_matrix`, or None)."""
    p = tie
    if p is not None:
        k = (p.T @ k @ p).tocsr()
    fd = (3 * np.flatnonzero(free)[:, None] + np.arange(3)).ravel()
    dd = (3 * np.flatnonzero(~free & ~hanging)[:, None] + np.arange(3)).ravel()
    u = np.array(u, float)
    k_free = k[fd]
    u[fd] = factorize(k_free[:, fd]).solve(-(k_free[:, dd] @ u[dd]))
    return u if p is None else p @ u



def lame_sphere(r: np.ndarray, a: float, b: float, delta: float, nu: float, E: float = 3000.0) -> np.ndarray:
    """Radial displacement u_r(r) (mm) of a hollow sphere, inner radius ``a`` pushed out by
    ``delta``, outer radius ``b`` traction-free, linear elasticity (Lamé 1852; Timoshenko &
    Goodier, *Theory of Elasticity*, 3rd ed., 1970, section 141).

    Derivation: for a radial field ``u = u_r(r) e_r`` equilibrium reduces to
    ``d/dr (1/r^2 d(r^2 u_r)/dr) = 0``, so ``u_r = A r + B / r^2``. The strains are
    ``e_rr = A - 2B/r^3``, ``e_tt = e_pp = A + B/r^3``, the dilatation ``3A``, and the radial
    stress ``s_rr = lambda 3A + 2 mu e_rr = 3 kappa A - 4 mu B / r^3`` with
    ``kappa = lambda + 2 mu / 3``. The outer surface is free, ``s_rr(b) = 0``:
    ``B = 3 kappa A b^3 / (4 mu)``; the inner one is displaced, ``u_r(a) = delta``:
    ``A = delta / (a + 3 kappa b^3 / (4 mu a^2))``. As nu -> 1/2 (kappa -> infinity) the
    solution tends to the incompressible ``u_r = delta a^2 / r^2``."""
    from .fem import lame

    lam, mu = lame(E, nu)
    kappa = lam + 2.0 * mu / 3.0
    A = delta / (a + 3.0 * kappa * b ** 3 / (4.0 * mu * a ** 2))
    B = 3.0 * kappa * A * b ** 3 / (4.0 * mu)
    r = np.asarray(r, float)
    return A * r + B / r ** 2


def thick_sphere_error(h: float, nu: float = 0.45, *, element: str = "bbar", mesher: str = "fitted",
                       a: float = 10.0, b: float = 25.0, delta: float = 1.0, subdivisions: int = 5,
                       grade_mm: float | None = None) -> dict:
    """Relative RMS error of the FEM's radial displacement over the free nodes against
    :func:`lame_sphere`, the bone sphere (radius ``a``) displaced by the exact field
    (``grade_mm``: the graded mesh, coarse that far from the bone sphere)."""
    import trimesh

    from .fem import assemble_stiffness, factorize
    from .tissue_mesh import FREE, HANGING, build_tissue_mesh

    skin = SurfaceMesh.from_trimesh(trimesh.creation.icosphere(subdivisions, radius=b), name="skin")
    bone = SurfaceMesh.from_trimesh(trimesh.creation.icosphere(subdivisions, radius=a), name="bone")
    mesh = build_tissue_mesh({"bone": bone}, skin, h, mesher=mesher, grade_mm=grade_mm)
    k = assemble_stiffness(mesh.nodes, mesh.tets, 3000.0, nu, cells=mesh.cells if element == "bbar" else None)
    r = np.linalg.norm(mesh.nodes, axis=1)
    exact = lame_sphere(r, a, b, delta, nu)
    free = mesh.labels == FREE
    u = ((exact / r)[:, None] * mesh.nodes).ravel()
    u = solve_with_dirichlet(k, u, free, mesh.labels == HANGING, mesh.constraint_matrix(), factorize)
    ur = np.einsum("ij,ij->i", u.reshape(-1, 3), mesh.nodes / r[:, None])
    err = ur[free] - exact[free]
    return {"h_mm": h, "nu": nu, "element": element, "mesher": mesher, "nodes": len(mesh.nodes),
            "tets": len(mesh.tets), "rms_error_rel": float(np.sqrt(np.mean(err ** 2)) / np.sqrt(np.mean(exact[free] ** 2))),
            "max_error_mm": float(np.abs(err).max())}
