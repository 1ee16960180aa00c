"""`surgery simulate --sex`: the measures table carries the norms and z-scores before and after."""

from __future__ import annotations

import pytest

import medface
from medface.errors import InputError, ParameterError
from medface_surgery.plan import load_plan
from medface_surgery.simulation import Simulation
from tests.conftest import REPO

SAMPLE = REPO / "sample_data"


@pytest.fixture(scope="module")
def genio_plan(tmp_path_factory):
    path = tmp_path_factory.mktemp("plan") / "genio.json"
    medface.run("surgery.plan", landmarks=SAMPLE / "landmarks.mrk.json", procedure="genioplasty", advance=4.0, out=path)
    return path


def _simulate(plan, out, **kw):
    return medface.run("surgery.simulate", plan=plan, bone=SAMPLE / "skull.ply", mandible=SAMPLE / "mandible.ply",
                       skin=SAMPLE / "skin.ply", tissue="preview", figures=False, out=out, **kw)


def test_simulate_with_sex_gives_z_scores_before_and_after(genio_plan, tmp_path):
    result = _simulate(genio_plan, tmp_path / "f", sex="F")
    rows = {r["measure"]: r for r in result.tables["measures"]}
    length = rows["mandibular_length"]  # Co-Gn: the chin segment carries gnathion forward
    assert length["norm_mean"] == 123.6 and length["norm_sd"] == 4.0 and length["norm_sex"] == "F"
    assert length["z_before"] == pytest.approx((length["before"] - 123.6) / 4.0, abs=0.01)
    assert length["z_after"] == pytest.approx((length["after"] - 123.6) / 4.0, abs=0.01)
    assert rows["snb"]["norm_sex"] == "pooled" and rows["snb"]["z_after"] is not None


def test_simulate_without_sex_gives_pooled_norms_only(genio_plan, tmp_path):
    rows = {r["measure"]: r for r in _simulate(genio_plan, tmp_path / "u").tables["measures"]}
    assert rows["sna"]["z_before"] is not None
    assert rows["mandibular_length"]["z_before"] is None and "give sex M or F" in rows["mandibular_length"]["norm_note"]


def test_simulate_refuses_an_unknown_sex(genio_plan, tmp_path):
    with pytest.raises(ParameterError, match="'X' is not one of: F, M, unknown"):  # the manifest's choices
        _simulate(genio_plan, tmp_path / "x", sex="X")
    with pytest.raises(InputError, match="unknown sex 'X'"):  # the logic refuses it too, from a script
        Simulation(load_plan(genio_plan), tissue="preview", sex="X")
