"""The HTML viewer and the HTML report open in headless Chromium: a scene is drawn, images load."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from PIL import Image

import medface
from medface.io import read_landmarks, read_mesh
from medface.report import write_report
from medface.viz.render import export_html, render_png
from medface.viz.scene import Scene

from .browser import dump_dom, screenshot

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data"


def test_html_viewer_draws_the_scene_in_headless_chromium(tmp_path):
    scene = Scene().add_mesh(read_mesh(SAMPLE / "mandible.ply"), color="ivory")
    page = export_html(scene, tmp_path / "mandible.html")
    shot = np.asarray(Image.open(screenshot(page, tmp_path)).convert("RGB")).astype(int)
    background = shot[2, 2]
    differs = np.abs(shot - background).sum(axis=2) > 30
    # the mesh, not just the caption: a large share of the page differs from the background,
    # with shading (many grey levels), in the middle of the page
    assert differs.mean() > 0.10, f"only {differs.mean():.1%} of the page is drawn"
    middle = shot[200:500, 150:550]
    assert len(np.unique(middle.reshape(-1, 3), axis=0)) > 50, "no shaded surface in the middle of the page"


def test_report_of_a_sample_run_opens_without_missing_images(tmp_path):
    result = medface.run("surgery.inspect-ct", ct=SAMPLE / "head_ct.nii.gz")
    scene = Scene().add_mesh(read_mesh(SAMPLE / "skull.ply")).add_landmarks(read_landmarks(SAMPLE / "landmarks.mrk.json"))
    figure = render_png(scene, tmp_path / "skull.png", view="frontal", size=(300, 300))
    paths = write_report(result, tmp_path / "report", figures={"skull": (figure, "sample skull, frontal")})
    html = paths.html.read_text(encoding="utf-8")
    # the page itself runs no script (its policy forbids them); a test copy without the policy
    # gets a checker that records, after load, whether every image decoded
    checker = ("<script>window.addEventListener('load', () => { const imgs = [...document.images];"
               "const ok = imgs.filter(i => i.complete && i.naturalWidth > 0).length;"
               "document.body.insertAdjacentHTML('beforeend', `<p id='img-check'>${ok}/${imgs.length}</p>`);"
               "});</script>")
    probe = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", html).replace("</body>", checker + "</body>")
    page = tmp_path / "probe.html"
    page.write_text(probe, encoding="utf-8")
    dom = dump_dom(page, tmp_path)
    found = re.search(r"id=\"img-check\">(\d+)/(\d+)<", dom)
    assert found, "the page did not finish loading in Chromium"
    ok, total = int(found.group(1)), int(found.group(2))
    assert total >= 1 and ok == total, f"{total - ok} of {total} images did not load"
    for record in result.provenance.inputs:
        assert record.sha256 in dom
    shot = np.asarray(Image.open(screenshot(paths.html, tmp_path)).convert("L"))
    assert shot.std() > 10  # the report renders (text and figure), not a blank page
