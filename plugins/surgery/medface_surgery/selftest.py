"""Self-test: the main pipeline on the sample head (segment the CT, plan a genioplasty from its
landmarks, simulate it with the preview), through the commands as a user runs them."""

from __future__ import annotations

from pathlib import Path

import numpy as np

CHIN_ADVANCE_MM = 4.0


def _sample_data() -> Path:
    """The sample head: ``$MEDFACE_SAMPLE_DATA``, ``./sample_data`` or the checkout's."""
    from medface.errors import InputError
    from medface.phantom.sample_data import find_sample_data

    found = find_sample_data(("head_ct.nii.gz", "landmarks.mrk.json"))
    if found is not None:
        return found
    raise InputError("the surgery self-test needs the sample head (head_ct.nii.gz and landmarks.mrk.json in "
                     "$MEDFACE_SAMPLE_DATA or ./sample_data)", hint="write it with `medface sample-data`")


def _check_chin(simulation, landmarks: dict, plan) -> None:
    """The bony chin (menton) moved with the chin segment by exactly the plan's move; the forehead
    stayed; the soft-tissue chin followed the bone, attenuated."""
    move = np.asarray(plan.content["moves"][0]["translation_mm"], float)
    assert abs(np.linalg.norm(move) - CHIN_ADVANCE_MM) < 1e-6, move
    planned = simulation.planned
    assert planned.landmark_segment["me"] == "chin", planned.landmark_segment
    assert np.allclose(planned.landmarks["me"] - landmarks["me"], move, atol=1e-6), planned.landmarks["me"]
    skin = simulation.skin.vertices
    near_chin = np.linalg.norm(skin - landmarks["pog_s"], axis=1) < 10
    forehead = np.linalg.norm(skin - landmarks["n"], axis=1) < 15
    moved = np.linalg.norm(simulation.skin_after.vertices - skin, axis=1)
    assert 1.0 < moved[near_chin].mean() <= CHIN_ADVANCE_MM + 1e-6, moved[near_chin].mean()
    assert moved[forehead].max() < 1e-6, moved[forehead].max()


def selftest(workdir: Path) -> str:
    import medface
    from medface.io import read_landmarks, read_mesh

    sample = _sample_data()
    seg_dir, sim_dir, plan_path = workdir / "segment", workdir / "simulate", workdir / "genioplasty.json"
    medface.run("surgery.segment", ct=sample / "head_ct.nii.gz", target_faces=30_000, figures=False, out=seg_dir)
    medface.run("surgery.plan", landmarks=sample / "landmarks.mrk.json", procedure="genioplasty",
                advance=CHIN_ADVANCE_MM, out=plan_path)
    result = medface.run("surgery.simulate", plan=plan_path, bone=seg_dir / "skull.ply",
                         mandible=seg_dir / "mandible.ply", skin=seg_dir / "skin.ply", tissue="preview",
                         figures=False, out=sim_dir)
    chin = read_mesh(sim_dir / "segment_chin.stl")
    assert chin.is_watertight() and chin.n_vertices > 100, chin
    landmarks = {k: np.asarray(v, float) for k, v in read_landmarks(sample / "landmarks.mrk.json").to_dict().items()}
    _check_chin(result.data["simulation"], landmarks, medface.io.read_plan(plan_path))
    return (f"sample CT segmented (skull, mandible, skin), genioplasty planned from its landmarks and simulated: "
            f"menton moved {CHIN_ADVANCE_MM:g} mm with the chin segment, soft chin "
            f"{result.summary['max_skin_change_mm']:.1f} mm at most, forehead still")
