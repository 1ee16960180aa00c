"""The tissue mesh graded away from the moving bone (spacing h near it, 2 h beyond, hanging nodes
tied to the coarse side): exact on linear fields, accurate on Lamé's thick sphere, and the
same model behaviour (basis update = direct solve, zero move = no change) as the uniform mesh.
Synthetic spheres only."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from medface.data import SurfaceMesh
from medface_surgery.fem import SoftTissueModel
from medface_surgery.graded_mesh import on_cubes
from medface_surgery.tissue_mesh import FREE, HANGING, build_tissue_mesh
from medface_surgery.tissue_validation import thick_sphere_error, two_sphere_case

from .affine_fields import affine_field_error

A, B = 10.0, 40.0  # a bone sphere in a skin sphere wide enough for coarse cubes
SKIN_BAND = 0.8  # mm: skin-surface nodes lie within the snap limit (0.25 h) of the skin sphere


@pytest.fixture(scope="module")
def sphere_mesh():
    skin = SurfaceMesh.from_trimesh(trimesh.creation.icosphere(4, radius=B), name="skin")
    bone = SurfaceMesh.from_trimesh(trimesh.creation.icosphere(4, radius=A), name="bone")
    return build_tissue_mesh({"bone": bone}, skin, 3.0, grade_mm=3.0)


def test_graded_mesh_has_both_levels_and_hanging_nodes(sphere_mesh):
    stats = sphere_mesh.stats
    assert stats["mesher"] == "graded" and stats["level_spacings_mm"] == [6.0, 3.0]
    assert min(stats["level_nodes"]) > 0
    hang, masters, weights = sphere_mesh.constraints
    assert len(hang) > 100 and np.all(sphere_mesh.labels[hang] == HANGING)
    assert np.allclose(weights.sum(axis=1), 1.0) and weights.min() >= -1e-12
    # every hanging node sits where its masters' linear interpolation puts it (on the coarse face)
    placed = np.einsum("kj,kjd->kd", weights, sphere_mesh.nodes[masters])
    assert np.abs(placed - sphere_mesh.nodes[hang]).max() < 1e-6
    assert not np.isin(masters, hang).any()  # masters are never hanging themselves


def test_a_linear_field_is_reproduced_exactly(sphere_mesh):
    """Patch test through the level interface: with an affine field prescribed on the bone and
    the skin, the solved interior and the hanging nodes carry the same affine field."""
    mesh = sphere_mesh
    on_skin = (np.linalg.norm(mesh.nodes, axis=1) > B - SKIN_BAND) & (mesh.labels == FREE)
    assert affine_field_error(mesh, on_skin).max() < 1e-8


def test_dropping_the_constraints_breaks_the_patch_test(sphere_mesh):
    """The check above can fail: hanging nodes left free (no tie to the coarse side) open a
    crack along the interface and the affine field is lost."""
    mesh = sphere_mesh
    on_skin = np.linalg.norm(mesh.nodes, axis=1) > B - SKIN_BAND
    assert affine_field_error(mesh, on_skin, tied=False, shift=0.0).max() > 1e-4


def test_thick_sphere_stays_accurate_with_fewer_nodes():
    uniform = thick_sphere_error(3.0, 0.45, b=B, subdivisions=4)
    graded = thick_sphere_error(3.0, 0.45, b=B, subdivisions=4, grade_mm=3.0)
    assert graded["rms_error_rel"] < 0.05
    assert graded["rms_error_rel"] < uniform["rms_error_rel"] + 0.01
    assert graded["nodes"] < 0.85 * uniform["nodes"]


def test_points_on_cube_closures():
    cubes = np.array([[1, 1, 1]])
    pts = np.array([[1.0, 1.5, 2.0], [2.0, 2.0, 2.0], [0.5, 1.5, 1.5], [1.5, 1.5, 2.25], [1.0, 1.0, 1.0]])
    assert on_cubes(pts, cubes, (3, 3, 3)).tolist() == [True, True, False, False, True]


@pytest.fixture(scope="module")
def graded_model():
    segments, skin, moves = two_sphere_case(radius=40.0)
    model = SoftTissueModel(segments, skin, fixed=["fixed"], h=3.0, grade_mm=3.0)
    return model, skin, moves


def test_graded_model_update_equals_direct_solve(graded_model):
    model, skin, moves = graded_model
    assert model.info()["hanging_nodes"] > 0 and model.info()["mesher"] == "graded"
    fast, direct = model.predict(moves), model.solve_direct(moves)
    assert np.abs(fast - direct).max() < 1e-9
    assert np.abs(fast - skin.vertices).max() > 0.5  # the move reaches the skin
    assert np.array_equal(model.predict({}), skin.vertices)


def test_graded_model_agrees_with_the_uniform_mesh(graded_model):
    model, skin, moves = graded_model
    segments, _, _ = two_sphere_case(radius=40.0)
    uniform = SoftTissueModel(segments, skin, fixed=["fixed"], h=3.0)
    d_graded, d_uniform = model.predict_displacement(moves), uniform.predict_displacement(moves)
    moved = np.linalg.norm(d_uniform, axis=1) > 0.2
    diff = np.linalg.norm(d_graded - d_uniform, axis=1)[moved] / np.linalg.norm(d_uniform, axis=1)[moved]
    assert np.median(diff) < 0.02 and np.percentile(diff, 95) < 0.06
    assert model.info()["free_dofs"] < uniform.info()["free_dofs"]


def test_bad_grade_is_refused():
    from medface.errors import ParameterError

    segments, skin, _ = two_sphere_case()
    with pytest.raises(ParameterError, match="grade_mm"):
        build_tissue_mesh(segments, skin, 3.0, grade_mm=-2.0)


def test_skin_the_mesh_cannot_reach_is_warned_about():
    """A 1 mm thin fin on the skin (an ear rim, say) is finer than the 3 mm grid: its vertices
    lie outside the tissue mesh and their movement is extrapolated; the model says so, and a
    smooth skin gets no such warning."""
    import manifold3d

    segments, skin, _ = two_sphere_case()
    fin = trimesh.creation.box(extents=(1.0, 14.0, 14.0))
    fin.apply_translation([0.0, 0.0, 30.0])
    ball = manifold3d.Manifold(manifold3d.Mesh(np.asarray(skin.vertices, np.float32), np.asarray(skin.faces, np.uint32)))
    boxm = manifold3d.Manifold(manifold3d.Mesh(np.asarray(fin.vertices, np.float32), np.asarray(fin.faces, np.uint32)))
    out = (ball + boxm).to_mesh()
    finned = SurfaceMesh(np.asarray(out.vert_properties[:, :3], float), np.asarray(out.tri_verts, np.int64), name="skin")
    smooth = SoftTissueModel(segments, skin, fixed=["fixed"], h=3.0)
    assert smooth.warnings() == []
    warned = SoftTissueModel(segments, finned, fixed=["fixed"], h=3.0).warnings()
    assert len(warned) == 1 and "outside the soft-tissue mesh" in warned[0] and "extrapolated" in warned[0]
