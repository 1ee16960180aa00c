"""Occlusal splints of a bimaxillary plan: intermediate (moved maxilla, unmoved mandible) and final
(both moved), printable, between the arches without entering the teeth, with the mandible opened
(autorotation) just enough for the least thickness; and the refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from medface_surgery.plan import SurgeryPlan
from medface_surgery.cutting import to_manifold
from medface_surgery.printable import check_printable
from medface_surgery.splints import _rotate, plan_splints

from medface.errors import InputError
from medface.io import read_landmarks, read_mesh, write_mesh

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data"


@pytest.fixture(scope="module")
def case():
    lm = read_landmarks(SAMPLE / "landmarks.mrk.json")
    bones = {"cranium": read_mesh(SAMPLE / "skull.ply"), "mandible": read_mesh(SAMPLE / "mandible.ply")}
    plan = SurgeryPlan.from_preset("bimaxillary", lm, advance=5.0, mandible_advance=3.0)
    planned = plan.apply(bones)
    return plan, bones, planned, plan_splints(plan, bones, planned, voxel_mm=0.4)


def test_bimaxillary_plan_gets_an_intermediate_and_a_final_splint(case, tmp_path):
    _, _, _, splints = case
    assert set(splints) == {"intermediate", "final"}
    for key, splint in splints.items():
        check = check_printable(splint.mesh)
        assert check.ok, check.to_dict()
        assert check.volume_mm3 > 1000
        assert splint.min_thickness_mm >= 1.0 - 1e-3
        back = read_mesh(write_mesh(splint.mesh, tmp_path / f"{key}.stl"))
        assert back.is_watertight()
    # the intermediate splint holds the maxilla 5 mm ahead of the unmoved mandible, the final one 2 mm:
    # it is a different part from the final one
    a, b = to_manifold(splints["intermediate"].mesh), to_manifold(splints["final"].mesh)
    assert (a - b).volume() > 500


def test_splint_lies_between_the_arches_it_was_made_for(case):
    plan, bones, planned, splints = case
    lm = plan.landmarks
    hinge_centre = 0.5 * (lm["co_l"] + lm["co_r"])
    for key, lower in (("intermediate", bones["mandible"]), ("final", planned.segments["mandible_distal"])):
        splint = splints[key]
        upper = to_manifold(planned.segments["maxilla"])
        # the lower arch in the position the splint was made in (opened about the condyles)
        axis = lm["co_l"] - lm["co_r"]
        axis /= np.linalg.norm(axis)
        if np.cross(axis, lm["me"] - hinge_centre)[2] > 0:
            axis = -axis
        opened = lower.__class__(_rotate(lower.vertices, (hinge_centre, axis), splint.opening_deg), lower.faces)
        solid = to_manifold(splint.mesh)
        assert (solid ^ upper).volume() < 1.0
        assert (solid ^ to_manifold(opened)).volume() < 1.0
        # and it touches both: the imprints are within a millimetre of the teeth
        assert solid.min_gap(upper, 3.0) < 0.5
        assert solid.min_gap(to_manifold(opened), 3.0) < 0.5
    assert splints["intermediate"].opening_deg > 0


def test_plan_that_moves_no_jaw_gets_no_splint(case):
    plan, bones, _, _ = case
    still = SurgeryPlan.from_preset("le_fort_i", plan.landmarks, advance=0.0)
    with pytest.raises(InputError, match="neither jaw"):
        plan_splints(still, bones)
    doc = plan.to_json_dict()
    doc["landmarks"] = {k: v for k, v in doc["landmarks"].items() if k not in ("cor_l", "cor_r")}
    with pytest.raises(InputError, match="coronoid"):
        plan_splints(SurgeryPlan(doc), bones)
