"""Printable cutting guides: watertight, one piece, off the bone by the clearance, slotted along
the planes, refused when they cannot be made; and the printability check itself."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from medface_surgery.cutting import CutPlane, to_manifold
from medface_surgery.guides import cutting_guide, plan_guides
from medface_surgery.plan import SurgeryPlan
from medface_surgery.printable import check_printable, self_intersections

from medface.data import SurfaceMesh
from medface.errors import InputError, ParameterError
from medface.io import read_landmarks, read_mesh, write_mesh

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data"


@pytest.fixture(scope="module")
def bsso_guides(mandible):
    plan = SurgeryPlan.from_preset("bsso", read_landmarks(SAMPLE / "landmarks.mrk.json"), advance=3.0)
    return plan, plan_guides(plan, {"mandible": mandible})


def _box(lo, hi) -> SurfaceMesh:
    import trimesh

    tm = trimesh.creation.box(extents=np.subtract(hi, lo))
    tm.apply_translation(np.add(lo, hi) / 2)
    v, f = trimesh.remesh.subdivide_to_size(tm.vertices, tm.faces, max_edge=2.0)  # bone meshes are dense
    tm = trimesh.Trimesh(v, f)
    return SurfaceMesh(tm.vertices, tm.faces, name="box")


def test_bsso_guides_are_printable_and_stay_off_the_bone(bsso_guides, mandible, tmp_path):
    _, guides = bsso_guides
    assert set(guides) == {"bsso_l", "bsso_r"}
    bone = to_manifold(mandible)
    for name, guide in guides.items():
        check = check_printable(guide.mesh)
        assert check.ok, check.to_dict()
        assert check.volume_mm3 > 300
        solid = to_manifold(guide.mesh)
        # the guide never enters the bone, and sits on it with about the clearance between
        assert (solid ^ bone).volume() < 0.05
        assert guide.dropped_mm3 == []  # the slot did not split it (one piece from the start)
        # the inner surface follows the bone at about the clearance (0.25 mm along the approach)
        from medface_surgery.fibula import _surface_distance

        d = _surface_distance(guide.mesh.vertices[::5], mandible, near=guide.mesh.vertices)
        assert 0.1 < np.percentile(d, 10) < 0.4
        # written as STL and read back: still a closed manifold of the same volume
        path = write_mesh(guide.mesh, tmp_path / f"{name}.stl")
        back = read_mesh(path)
        assert back.is_watertight() and abs(back.signed_volume() - check.volume_mm3) < 1.0


def test_the_slot_runs_along_the_plane(bsso_guides):
    import manifold3d as m3d

    plan, guides = bsso_guides
    guide = guides["bsso_l"]
    plane = guide.planes[0]
    solid = to_manifold(guide.mesh)
    e = np.cross(guide.approach, plane.normal)
    e /= np.linalg.norm(e)
    dd = np.cross(plane.normal, e)

    def slab(width, offset=0.0):
        box = m3d.Manifold.cube((guide.slot_lengths_mm[plane.name] - 2.0, 80.0, width), center=True)
        es = guide.mesh.vertices @ e
        reach = guide.parameters["slot_width_mm"] / 2 + guide.parameters["voxel_mm"]
        near = np.abs((guide.mesh.vertices - plane.centre) @ plane.normal) <= reach
        centre = plane.centre + (0.5 * (es[near].min() + es[near].max()) - plane.centre @ e) * e \
            + offset * plane.normal
        return box.transform(np.column_stack([e, dd, plane.normal, centre]))

    # no guide material inside the kerf along the slot; plenty right beside it (the slot walls)
    assert (solid ^ slab(guide.parameters["kerf_mm"] * 0.9)).volume() < 0.5
    beside = (solid ^ slab(2.0, offset=2.0)).volume()
    assert beside > 20.0, beside


def test_guide_on_a_box_with_known_geometry():
    box = _box((-20, -10, -10), (20, 10, 10))
    plane = CutPlane("mid", (0.0, 0.0, 0.0), (1.0, 0.0, 0.0))
    guide = cutting_guide(box, [plane], (0.0, 0.0, 1.0), wall_mm=2.0, clearance_mm=0.25, block_mm=0.0, margin_mm=8.0)
    check = check_printable(guide.mesh)
    assert check.ok
    lo, hi = guide.mesh.vertices.min(axis=0), guide.mesh.vertices.max(axis=0)
    # the shell sits 0.25 mm above the top face and is 2 mm thick; it spans the margin either side
    assert hi[2] == pytest.approx(10.0 + 0.25 + 2.0, abs=0.25)
    assert lo[2] == pytest.approx(10.0 + 0.25, abs=0.25)
    assert hi[0] == pytest.approx(8.0, abs=0.6) and lo[0] == pytest.approx(-8.0, abs=0.6)
    # the slot splits the top but the bridges keep one piece
    assert check.components == 1 and guide.slot_lengths_mm["mid"] > 10


def test_guide_refusals(mandible):
    open_mesh = SurfaceMesh(mandible.vertices, mandible.faces[:-10], name="open mandible")
    plane = CutPlane("p", (40.0, -30.0, -60.0), (0.0, 1.0, 0.0))
    with pytest.raises(InputError, match="open"):
        cutting_guide(open_mesh, [plane], (1.0, 0.0, 0.0))
    with pytest.raises(InputError, match="do not reach bone"):
        cutting_guide(mandible, [CutPlane("far", (0.0, 500.0, 0.0), (0.0, 1.0, 0.0), (10.0, 10.0))], (1.0, 0, 0))
    with pytest.raises(InputError, match="approach direction is along"):
        cutting_guide(mandible, [plane], (0.0, 1.0, 0.0))
    with pytest.raises(ParameterError, match="wall_mm"):
        cutting_guide(mandible, [plane], (1.0, 0.0, 0.0), wall_mm=0.1)
    with pytest.raises(InputError, match="no mesh was given"):
        plan_guides(SurgeryPlan.from_preset("genioplasty", read_landmarks(SAMPLE / "landmarks.mrk.json"),
                                            advance=2.0), {"cranium": mandible})


def test_self_intersection_check_finds_crossings_and_passes_clean_meshes():
    import trimesh

    a = trimesh.creation.box(extents=(10, 10, 10))
    b = trimesh.creation.box(extents=(10, 10, 10))
    b.apply_translation((5.0, 3.0, 2.0))
    two = SurfaceMesh(np.vstack([a.vertices, b.vertices]), np.vstack([a.faces, b.faces + len(a.vertices)]))
    assert two.is_watertight()           # closed and manifold, yet not printable as one solid
    assert self_intersections(two) > 0
    assert not check_printable(two).ok
    assert self_intersections(SurfaceMesh(a.vertices, a.faces)) == 0
    sphere = trimesh.creation.icosphere(subdivisions=4)
    assert self_intersections(SurfaceMesh(sphere.vertices, sphere.faces)) == 0


@pytest.mark.slow
def test_guides_command_writes_a_bimaxillary_plans_parts(tmp_path):
    import medface
    from medface_surgery.plan import save_plan
    from medface_surgery.presets import make_plan

    plan = make_plan("bimaxillary", read_landmarks(SAMPLE / "landmarks.mrk.json"), advance=5.0, mandible_advance=3.0)
    save_plan(plan, tmp_path / "plan.json")
    result = medface.run("surgery.guides", plan=tmp_path / "plan.json", bone=SAMPLE / "skull.ply",
                         mandible=SAMPLE / "mandible.ply", figures=False, out=tmp_path / "out")
    assert result.summary["all_printable"] is True
    names = {"guide_le_fort_i", "guide_bsso_l", "guide_bsso_r", "splint_intermediate", "splint_final"}
    assert {row["part"] for row in result.tables["printability"]} == names
    for name in names:
        mesh = read_mesh(tmp_path / "out" / f"{name}.stl")
        assert mesh.is_watertight() and mesh.signed_volume() > 0


def test_guides_for_a_bsso_with_only_the_mandible_skip_the_splints_and_say_why(tmp_path):
    """A splint lies between both arches: with only the mandible given, the guides are made and
    the splints are left out with a warning (not a failure after the guides were built)."""
    import medface
    from medface_surgery.plan import save_plan
    from medface_surgery.presets import make_plan

    save_plan(make_plan("bsso", read_landmarks(SAMPLE / "landmarks.mrk.json"), advance=3.0), tmp_path / "plan.json")
    result = medface.run("surgery.guides", plan=tmp_path / "plan.json", mandible=SAMPLE / "mandible.ply",
                         figures=False, out=tmp_path / "out")
    assert result.summary["splints"] == "none" and result.summary["all_printable"] is True
    assert any(w.startswith("no occlusal splints") and "cranium" in w for w in result.warnings), result.warnings
    assert sorted(p.name for p in (tmp_path / "out").glob("*.stl")) == ["guide_bsso_l.stl", "guide_bsso_r.stl"]


def test_guides_from_a_ct_carry_the_segmentations_warnings(tmp_path, landmarks):
    """Guides made from a CT say what the segmentation said: here the plan holds no skull
    landmark, so the split cannot be seeded, and the 2 mm sample CT's jaws are cut apart by
    erosion, with its warning that teeth may stay with the skull."""
    import medface
    from medface.anatomy.ct_segmentation import SKULL_LANDMARKS
    from medface_surgery.plan import save_plan
    from medface_surgery.presets import make_plan

    mandible_only = {k: v for k, v in landmarks.items() if k not in SKULL_LANDMARKS}
    save_plan(make_plan("bsso", mandible_only, advance=3.0), tmp_path / "plan.json")
    result = medface.run("surgery.guides", plan=tmp_path / "plan.json", ct=SAMPLE / "head_ct.nii.gz",
                         splints=False, figures=False)
    assert any(w.startswith("the landmarks were not used for the mandible split") for w in result.warnings)
    assert any("teeth or condyles" in w for w in result.warnings), result.warnings
    assert result.summary["all_printable"] is True
