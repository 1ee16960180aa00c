"""Finer cubes in the gaps between bones that move apart (a saw cut): the gap holds mesh nodes
that a 3 mm lattice misses, the levels are tied so that a linear field passes exactly, and only
pairs with a moving piece are refined. Synthetic boxes in a sphere only."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from medface.data import SurfaceMesh
from medface.errors import ParameterError
from medface_surgery.apply import PlanResult
from medface_surgery.fem import SoftTissueModel
from medface_surgery.gap_refinement import gap_pairs, moving_pairs, refinement_factor
from medface_surgery.simulation import saw_gaps
from medface_surgery.tissue_mesh import FREE, HANGING, build_tissue_mesh

from .affine_fields import affine_field_error

R_SKIN = 40.0
GAP = 1.0  # mm between the two boxes, at z = 0: the 3 mm lattice's node layers lie at z = -1 and 2


def _box(z0: float, z1: float, name: str) -> SurfaceMesh:
    box = trimesh.creation.box(extents=(30.6, 20.6, z1 - z0))
    box.apply_translation((0.0, 0.0, (z0 + z1) / 2.0))
    return SurfaceMesh.from_trimesh(box, name=name)


@pytest.fixture(scope="module")
def pieces():
    skin = SurfaceMesh.from_trimesh(trimesh.creation.icosphere(4, radius=R_SKIN), name="skin")
    return {"lower": _box(-20.0, -GAP / 2, "lower"), "upper": _box(GAP / 2, 20.0, "upper")}, skin


@pytest.fixture(scope="module")
def refined(pieces):
    bones, skin = pieces
    return build_tissue_mesh(bones, skin, 3.0, moving=["upper"], resolve_gaps=True)


def _free_nodes_in_gap(mesh) -> int:
    x = mesh.nodes
    inside = (np.abs(x[:, 2]) < 0.45 * GAP) & (np.abs(x[:, 0]) < 14.0) & (np.abs(x[:, 1]) < 9.0)
    return int((inside & (mesh.labels == FREE)).sum())


def test_the_gap_holds_tissue_nodes_only_when_refined(pieces, refined):
    bones, skin = pieces
    plain = build_tissue_mesh(bones, skin, 3.0, moving=["upper"])
    assert _free_nodes_in_gap(plain) == 0  # the lattice cannot see a 1 mm gap
    assert _free_nodes_in_gap(refined) > 100
    assert refined.stats["level_spacings_mm"] == [3.0, 1.0]  # 3 mm cubes split 3 ways
    # the gap's two faces carry nodes of their own bone
    x, lab = refined.nodes, refined.labels
    face = (np.abs(x[:, 0]) < 14.0) & (np.abs(x[:, 1]) < 9.0)
    lower_face = face & (np.abs(x[:, 2] + GAP / 2) < 1e-6)
    upper_face = face & (np.abs(x[:, 2] - GAP / 2) < 1e-6)
    assert lower_face.sum() > 50 and upper_face.sum() > 50
    assert np.all(lab[lower_face] == 0) and np.all(lab[upper_face] == 1)


def test_a_linear_field_passes_the_refined_interface_exactly(refined):
    mesh = refined
    hang, masters, weights = mesh.constraints
    assert len(hang) > 100 and np.all(mesh.labels[hang] == HANGING) and not np.isin(masters, hang).any()
    placed = np.einsum("kj,kjd->kd", weights, mesh.nodes[masters])
    assert np.abs(placed - mesh.nodes[hang]).max() < 1e-6
    on_skin = (np.linalg.norm(mesh.nodes, axis=1) > R_SKIN - 0.8) & (mesh.labels == FREE)
    error = affine_field_error(mesh, on_skin)
    # exact to rounding where the interface is away from the boxes' side faces; where those cross
    # it the fine cubes kept by the fine lattice's own tissue test differ slightly (measured
    # 3.3e-3 mm in a field spanning 4 mm); without the ties (below) the error is 0.7 mm
    sides = (np.abs(np.abs(mesh.nodes[:, 0]) - 15.3) < 3.0) | (np.abs(np.abs(mesh.nodes[:, 1]) - 10.3) < 3.0)
    assert error[~sides].max() < 1e-3 and error.max() < 5e-3
    assert affine_field_error(mesh, on_skin, tied=False).max() > 0.1


def test_the_refined_model_moves_the_tissue_in_the_gap_between_its_faces(pieces):
    """The upper box lifted 1 mm, the lower fixed: the tissue in the gap moves between 0 and 1 mm
    (a node layer of the gap there), and the model's update equals its direct solve."""
    bones, skin = pieces
    model = SoftTissueModel(bones, skin, h=3.0, fixed=["lower"], grade_mm=None, resolve_gaps=True)
    lift = np.eye(4)
    lift[2, 3] = 1.0
    u = model.solve_nodes({"upper": lift}) - model.mesh.nodes
    x, lab = model.mesh.nodes, model.mesh.labels
    gap = (np.abs(x[:, 2]) < 0.45 * GAP) & (np.abs(x[:, 0]) < 10.0) & (np.abs(x[:, 1]) < 6.0) & (lab == FREE)
    assert gap.sum() > 20 and np.all((u[gap, 2] > 0.2) & (u[gap, 2] < 0.8))
    assert np.allclose(model.predict({"upper": lift}), model.solve_direct({"upper": lift}), atol=1e-6)
    assert model.info()["gap_spacing_mm"] == 1.0


def test_only_pairs_with_a_moving_piece_are_refined():
    assert moving_pairs(["cranium", "maxilla", "mandible"], ["maxilla"]) == [(0, 1), (1, 2)]
    assert moving_pairs(["cranium", "mandible"], []) == []
    names = ["cranium", "maxilla", "mandible"]
    assert gap_pairs(names, ["maxilla"], True) == [(0, 1), (1, 2)]
    assert gap_pairs(names, ["maxilla"], [("maxilla", "cranium")]) == [(0, 1)]
    assert gap_pairs(names, ["maxilla"], [("cranium", "mandible")]) == []  # neither moves
    assert gap_pairs(names, ["maxilla"], False) == []
    with pytest.raises(ParameterError, match="gap pair"):
        gap_pairs(names, ["maxilla"], [("maxilla", "hyoid")])


def test_simulate_refines_the_saw_gaps_between_pieces_of_one_bone_only():
    """A genioplasty's chin and the mandible it was cut from share a kerf; the chin and the
    cranium (teeth, joints) do not, and neither do two bones no saw touched."""
    planned = PlanResult(segment_bone={"chin": "mandible"})
    pieces = dict.fromkeys(["chin", "cranium (fixed)", "mandible (fixed)", "hyoid (fixed)"])
    assert saw_gaps(planned, pieces) == [("chin", "mandible (fixed)")]
    bsso = PlanResult(segment_bone={"distal": "mandible", "proximal_l": "mandible"})
    assert saw_gaps(bsso, dict.fromkeys(["distal", "proximal_l", "cranium (fixed)"])) == [("distal", "proximal_l")]


@pytest.mark.parametrize("h, r", [(4.0, 4), (3.0, 3), (2.0, 2), (1.5, 2), (1.0, 1), (0.5, 1)])
def test_the_split_brings_the_spacing_to_a_millimetre_at_most(h, r):
    assert refinement_factor(h) == r
