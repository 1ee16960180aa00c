"""The workstation in a real browser: `medface app` on a free port, Playwright + Debian's Chromium.

What a user does, checked on what the page shows: load the sample data, run `surgery segment`
from its generated form and see the meshes in the 3D view, move a segment with a live panel's
slider and see the skin change, screen a sample photo and read the top condition, give a
command a bad file and see the error while the app keeps answering, and find a plugin that was
written per docs/plugin-guide.md with its form. Screenshots go to docs/images/workstation/ when
MEDFACE_WORKSTATION_SCREENSHOTS names that folder (how docs/workstation.md's pictures are made).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from .test_plugin_guide import guide_files
from .workstation_browser import REPO, browser_page, choose, running_app, views_changed, views_png

SHOTS = os.environ.get("MEDFACE_WORKSTATION_SCREENSHOTS")
FULL_FRAME_JS = """() => { const img = document.querySelector('#views img.image-display-area');
  return img.complete && img.naturalWidth > 0
         && img.naturalWidth >= Math.round(img.clientWidth * devicePixelRatio) - 1; }"""


def _shot(page, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"))


def _run_and_wait(page, command: str, timeout_ms: int = 180_000) -> str:
    """Click Run; the title of the result card of this run (the runs here alternate commands, so
    a card naming ``command`` is not the card of the run before)."""
    page.locator("#run").click()
    title = page.locator("#job-result .v-card-title", has_text=command)
    title.wait_for(timeout=timeout_ms)
    return title.inner_text()


@pytest.fixture()
def data(tmp_path) -> Path:
    folder = tmp_path / "cases"
    folder.mkdir()
    for name in ("head_ct.nii.gz", "skull.ply", "landmarks.mrk.json", "condition_hypertelorism.png"):
        shutil.copy(REPO / "sample_data" / name, folder / name)
    ct = (REPO / "sample_data" / "head_ct.nii.gz").read_bytes()
    (folder / "broken_ct.nii.gz").write_bytes(ct[: len(ct) // 3])  # a NIfTI cut short: listed, unreadable
    return folder


@pytest.fixture()
def guide_plugin(tmp_path) -> Path:
    """The example plugin of docs/plugin-guide.md, in a folder of its own (no app code knows it)."""
    root = tmp_path / "plugins"
    (root / "hello_medface").mkdir(parents=True)
    (root / "hello_medface" / "__init__.py").write_text("")
    for name, text in guide_files().items():
        if name.startswith("hello_medface/"):
            (root / name).write_text(text)
    return root


def test_a_user_segments_moves_screens_and_recovers_from_a_bad_file(data, guide_plugin):
    import medface

    expected_top = medface.run("phenotype.screen", image=data / "condition_hypertelorism.png").summary["top_condition"]
    with running_app(data, plugin_path=guide_plugin) as (url, proc), browser_page() as page:
        page.goto(url)
        page.get_by_text("medface workstation").first.wait_for(timeout=60_000)
        page.wait_for_timeout(3000)
        empty = views_png(page)
        _shot(page, "data")

        # load sample data: the CT from the data folder into the scene (slice views)
        page.locator("[data-testid='data-head_ct.nii.gz']").click()
        page.locator("#info", has_text="loaded head_ct.nii.gz").wait_for(timeout=60_000)

        # run surgery segment from its generated form; the meshes come back into the 3D view
        page.locator("#tab-commands").click()
        choose(page, "#command-select", "surgery · segment")
        choose(page, "[data-testid='field-ct']", "head_ct.nii.gz")
        assert "done" in _run_and_wait(page, "surgery.segment")
        fraction, _ = views_changed(page, empty, 0.05)
        _shot(page, "commands-segment")
        assert fraction > 0.05
        page.locator("#tab-scene").click()
        for name in ("skin", "skull", "mandible"):
            page.locator(f"[data-testid='node-{name}']").wait_for(timeout=10_000)
        _shot(page, "scene")

        # the surgery panel: move the mandible with a slider, the predicted skin follows live
        page.locator("#tab-panels").click()
        choose(page, "#panel-select", "surgery")
        choose(page, "[data-testid='pick-segment']", "scene: mandible")
        page.locator("#open-panel").click()
        page.locator("#panel-controls").wait_for(timeout=120_000)
        assert not page.locator("#error").is_visible()
        page.wait_for_timeout(2000)
        before = views_png(page)
        summary_before = page.locator("#panel-summary").inner_text()
        slider = page.locator("#panel-controls .v-slider").nth(1).locator("[role='slider']")
        slider.focus()
        for _ in range(8):
            page.keyboard.press("ArrowRight")
            page.wait_for_timeout(150)
        fraction, _ = views_changed(page, before, 0.002)
        # reduced resolution while the slider moves; once it stops, the 3D view's frame is full size again
        page.wait_for_function(FULL_FRAME_JS, timeout=10_000)
        _shot(page, "panel-surgery")
        assert page.locator("#panel-summary").inner_text() != summary_before
        assert fraction > 0.002
        # the predicted skin's colour bar names its array and its range reaches the slider's move
        legend = page.locator("[data-testid='legend-move-segment: skin_predicted']").inner_text()
        assert "skin_change_mm" in legend
        assert float(legend.split()[-1]) == pytest.approx(float(page.locator(
            "[data-testid='panel-max_skin_change_mm']").inner_text()), abs=0.01)
        # the panel's buttons: its meshes as STL files in exports/ of the data folder
        page.locator("#export-stl").click()
        page.locator("#info").filter(has_text="STL file(s)").wait_for(timeout=30_000)
        assert {p.name for p in data.glob("exports/move-segment-*/*.stl")} == {"segment_moved.stl",
                                                                             "skin_predicted.stl"}

        # screen a sample photo: the top condition is in the page
        page.locator("#tab-commands").click()
        choose(page, "#command-select", "phenotype · screen")
        choose(page, "[data-testid='field-image']", "condition_hypertelorism.png")
        assert "done" in _run_and_wait(page, "phenotype.screen")
        top = page.locator("[data-testid='summary-top_condition']").inner_text()
        assert "synthetic phantom faces only" in page.locator("#job-result [data-testid='warning']").first.inner_text()
        page.locator("#job-result img").first.scroll_into_view_if_needed()
        _shot(page, "commands-phenotype")
        assert top == expected_top

        # a bad file: the one-line error is shown, and the app still answers
        choose(page, "#command-select", "surgery · segment")
        choose(page, "[data-testid='field-ct']", "broken_ct.nii.gz")
        assert "failed" in _run_and_wait(page, "surgery.segment")
        error = page.locator("#job-error").inner_text()
        assert "broken_ct.nii.gz" in error and "Traceback" not in error
        page.locator("#job-error").scroll_into_view_if_needed()
        _shot(page, "commands-error")
        page.locator("#tab-data").click()
        page.locator("[data-testid='data-skull.ply']").click()
        page.locator("#info", has_text="loaded skull.ply").wait_for(timeout=30_000)
        assert proc.poll() is None

        # the guide's plugin is there with its form, though no app code names it
        page.locator("#tab-commands").click()
        choose(page, "#command-select", "hello · measure")
        page.locator("[data-testid='field-factor']").wait_for(timeout=10_000)
        page.locator("[data-testid='field-mesh']").wait_for(timeout=10_000)


def test_a_user_grades_a_photo_session_from_the_expression_form(tmp_path):
    """The expression plugin, like any plugin, gets its form from its manifest: its folder input
    picks the session folder from the data folder, and the affected side is in the page."""
    shutil.copytree(REPO / "sample_data" / "expressions", tmp_path / "session_01")
    with running_app(tmp_path) as (url, proc), browser_page() as page:
        page.goto(url)
        page.get_by_text("medface workstation").first.wait_for(timeout=60_000)
        page.locator("#tab-commands").click()
        choose(page, "#command-select", "expression · grade")
        choose(page, "[data-testid='field-photos']", "session_01")
        assert "done" in _run_and_wait(page, "expression.grade")
        side = page.locator("[data-testid='summary-affected_side']").inner_text()
        page.locator("#job-result img").first.scroll_into_view_if_needed()
        _shot(page, "commands-expression")
        assert side.strip().endswith("right"), side  # the sample session's palsy is right-sided
        assert proc.poll() is None


def test_a_user_places_a_landmark_on_a_mesh_by_clicking_and_saves_it(tmp_path):
    import numpy as np
    from scipy.spatial import cKDTree

    from medface import io

    shutil.copy(REPO / "sample_data" / "skull.ply", tmp_path / "skull.ply")
    with running_app(tmp_path) as (url, proc), browser_page() as page:
        page.goto(url)
        page.get_by_text("medface workstation").first.wait_for(timeout=60_000)
        page.locator("[data-testid='data-skull.ply']").click()
        page.locator("#info", has_text="loaded skull.ply").wait_for(timeout=60_000)
        page.wait_for_timeout(2000)
        page.locator("#tab-scene").click()
        page.locator("#place").click()
        page.locator("[data-testid='node-placed landmarks']").wait_for(timeout=10_000)
        view = page.locator("#views img.image-display-area").first  # the 3D view
        box = view.bounding_box()
        page.mouse.click(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.3)  # the forehead
        page.wait_for_timeout(1500)
        page.locator("#stop-placing").click()
        page.locator("[data-testid='save-placed landmarks']").click()
        page.locator("#info", has_text="saved landmarks/").wait_for(timeout=10_000)
        _shot(page, "scene-landmark")
    saved = io.read_landmarks(tmp_path / "landmarks" / "placed_landmarks.mrk.json")
    skull = io.read_mesh(tmp_path / "skull.ply")
    assert len(saved.ids) == 1
    gap, _ = cKDTree(skull.vertices).query(saved.points)
    assert gap.max() < 2.0, f"the placed point lies {gap.max():.1f} mm from the skull it was clicked on"
    assert np.all(np.isfinite(saved.points))


def test_the_app_refuses_a_remote_address_unless_told(tmp_path):
    from medface.cli import main

    assert main(["app", "--data", str(tmp_path), "--host", "0.0.0.0", "--port", "1"]) == 2
