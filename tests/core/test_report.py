"""Reports: a self-contained, escaped HTML page and a JSON twin with provenance and sections."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from medface.data import InputRecord, Result, sha256_file
from medface.errors import OutputError
from medface.report import (Section, register_section_builder, render_html, render_text,
                            unregister_section_builder, write_report)

INJECTION = "<script>alert(1)</script>"


def _png(path, colour=(200, 30, 30), size=(16, 12)):
    from PIL import Image

    Image.new("RGB", size, colour).save(path)
    return path


def _result(tmp_path) -> Result:
    a = tmp_path / "a.bin"
    b = tmp_path / "b.bin"
    a.write_bytes(b"first input")
    b.write_bytes(b"second input")
    r = Result(command="toy.measure",
               summary={"bone_volume_ml": 123.456789, "extent_mm": [180.0, 200.5, 150.25], "angle_deg": 12.3456,
                        "verdict": INJECTION, "in_hu": True},
               metrics={"score": 0.123456},
               tables={"landmarks": [{"id": "n", "x_mm": 1.5, "note": "<b>bold?</b>"}, {"id": "pog", "x_mm": -2.0}]},
               figures={"overview": str(_png(tmp_path / "fig.png"))},
               warnings=["the CT has no orientation <check>"],
               limits=["Threshold count, not a segmentation."])
    p = r.provenance
    p.parameters = {"threshold_hu": 300.0, "mode": "fast"}
    p.inputs = [InputRecord("ct", str(a), sha256_file(a)), InputRecord("skull", str(b), sha256_file(b))]
    p.models = [InputRecord("net", "models/net", "f" * 64, "folder")]
    p.medface_version, p.plugin, p.plugin_version, p.seed, p.device = "0.1.0", "toy", "1.2", 7, "cpu"
    p.started, p.finished, p.duration_s = "2024-01-01T00:00:00+00:00", "2024-01-01T00:00:02+00:00", 2.0
    p.host = {"python": "3.11", "cpu_count": 4}
    return r


def _web_urls(page: str) -> list[str]:
    return re.findall(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", page, flags=re.I)


def test_report_is_self_contained_escaped_and_has_a_json_twin(tmp_path):
    r = _result(tmp_path)
    paths = write_report(r, tmp_path / "rep", sections=[Section("Notes", text="plain <i>text</i>")])
    page = paths.html.read_text(encoding="utf-8")
    assert paths.html.name == "report.html" and paths.json.name == "report.json"
    for rec in r.provenance.inputs + r.provenance.models:
        assert rec.sha256 in page
    assert "data:image/png;base64," in page and "<img" in page
    assert _web_urls(page) == [] and "<script" not in page.lower() and "<link" not in page.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;b&gt;bold?&lt;/b&gt;" in page and "plain &lt;i&gt;text&lt;/i&gt;" in page
    assert "Threshold count, not a segmentation." in page and "not a medical device" in page
    assert "123.5 mL" in page and "(180, 200.5, 150.2) mm" in page and "12.35°" in page
    assert "<dt title=\"in_hu\">In hu</dt><dd>yes</dd>" in page
    assert "the CT has no orientation &lt;check&gt;" in page and "none stated" not in page
    assert "threshold_hu" in page and "fast" in page and "2 s" in page
    doc = json.loads(paths.json.read_text(encoding="utf-8"))
    assert doc["provenance"] == json.loads(r.to_json())["provenance"]
    assert doc["summary"]["verdict"] == INJECTION
    assert [s["title"] for s in doc["report"]["sections"]] == ["Notes"]
    assert doc["report"]["sections"][0]["text"] == "plain <i>text</i>"
    assert doc["report"]["figures"][0]["embedded"] is True and doc["report"]["warnings"] == []


def test_missing_figure_gives_placeholder_and_warning(tmp_path):
    r = Result(command="toy.measure", figures={"heatmap": str(tmp_path / "nope.png")})
    (tmp_path / "notpng.png").write_text("hello")
    paths = write_report(r, tmp_path, figures={"bad": (tmp_path / "notpng.png", "a caption")})
    page = paths.html.read_text(encoding="utf-8")
    assert "<img" not in page
    assert "Figure “heatmap” is not available: file not found" in page and "not a PNG or JPEG" in page
    warnings = json.loads(paths.json.read_text(encoding="utf-8"))["report"]["warnings"]
    assert any("heatmap" in w and "nope.png" in w for w in warnings) and any("bad" in w for w in warnings)
    assert "none stated" in page  # no limits given


def test_registered_builders_add_sections_in_order(tmp_path):
    def first(result):
        return [Section("Alpha", text="a"), Section("Beta", table=[{"k": "<v>"}])]

    def second(result):
        return [Section("Gamma", html="<p class='x'>trusted <em>plugin</em> html</p>",
                        figure=_png(tmp_path / "g.png"), caption="gamma caption")]

    def broken(result):
        raise RuntimeError("boom")

    for fn in (first, broken, second):
        register_section_builder("toy.measure", fn)
    try:
        paths = write_report(Result(command="toy.measure"), tmp_path, sections=[Section("Delta", text="d")])
        other = render_html(Result(command="toy.other"))
    finally:
        for fn in (first, broken, second):
            assert unregister_section_builder("toy.measure", fn)
    page = paths.html.read_text(encoding="utf-8")
    positions = [page.index(f"<h2>{t}</h2>") for t in ("Alpha", "Beta", "Gamma", "Delta")]
    assert positions == sorted(positions)
    assert "trusted <em>plugin</em> html" in page and "&lt;v&gt;" in page and "gamma caption" in page
    assert page.count("data:image/png;base64,") == 1 and "Alpha" not in other
    report = json.loads(paths.json.read_text(encoding="utf-8"))["report"]
    assert [s["title"] for s in report["sections"]] == ["Alpha", "Beta", "Gamma", "Delta"]
    assert any("broken" in w and "boom" in w for w in report["warnings"])


def test_section_and_builder_arguments_are_checked(tmp_path):
    with pytest.raises(TypeError, match="title"):
        Section("")
    with pytest.raises(TypeError, match="table"):
        Section("t", table=["not a row"])
    with pytest.raises(ValueError, match="plugin.command"):
        register_section_builder("nodot", lambda r: [])
    with pytest.raises(TypeError, match="Section"):
        write_report(Result(command="toy.measure"), tmp_path, sections=["text"])
    with pytest.raises(TypeError, match="Result"):
        write_report({"summary": {}}, tmp_path)


def test_outputs_link_relatively_and_never_to_the_web(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "mesh.stl").write_text("solid")
    r = Result(command="toy.measure", outputs={"mesh": str(tmp_path / "out" / "mesh.stl"),
                                               "remote": "https://example.org/x", "gone": str(tmp_path / "g.ply")})
    page = write_report(r, tmp_path / "out" / "report").html.read_text(encoding="utf-8")
    assert 'href="../mesh.stl"' in page and "https://example.org/x" in page and _web_urls(page) == []
    assert "(not found)" in page


def test_unwritable_folder_is_an_output_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError):
        write_report(Result(command="toy.measure"), tmp_path / "file" / "sub")


def test_render_text(tmp_path):
    text = render_text(_result(tmp_path))
    assert "Bone volume" in text and "123.5 mL" in text and "sha256" in text and "not a medical device" in text


def test_report_of_a_real_run(medface_plugins, repo_root, tmp_path):
    import medface

    medface_plugins.include_installed()
    ct = repo_root / "sample_data" / "head_ct.nii.gz"
    if not ct.exists():
        pytest.skip("sample_data/head_ct.nii.gz is absent (run `medface sample-data`)")
    result = medface.run("surgery.inspect-ct", ct=ct, out=tmp_path / "run")
    paths = write_report(result, tmp_path / "run")
    page = paths.html.read_text(encoding="utf-8")
    assert sha256_file(ct) in page and "Inspect a CT volume" in page and _web_urls(page) == []
    assert "surgery 0.1.0" in page and 'href="result.json"' in page
    doc = json.loads(paths.json.read_text(encoding="utf-8"))
    assert doc["provenance"]["inputs"][0]["sha256"] == sha256_file(ct)


def test_importing_the_report_module_stays_light():
    code = ("import sys, medface.report; heavy = [m for m in ('numpy', 'torch', 'SimpleITK', 'vtk', 'pyvista') "
            "if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_purpose_names_the_command_title_given_by_the_plugin_layer(tmp_path):
    from medface.plugin.registry import command_title
    from medface.report import set_command_titles

    try:
        set_command_titles(lambda command: "Measure <things>." if command == "toy.measure" else "")
        page = render_html(Result(command="toy.measure"))
        assert "Measure &lt;things&gt;: what the command toy.measure found" in page
        set_command_titles(lambda command: 1 / 0)  # a failing lookup costs only the title
        assert "<p class=\"purpose\">what the command toy.measure found" in render_html(Result(command="toy.measure"))
    finally:
        set_command_titles(command_title)


def test_templates_are_package_data_and_user_text_cannot_become_markup(tmp_path):
    import fnmatch
    import tomllib
    from pathlib import Path

    import medface.report

    root = Path(medface.report.__file__).parent
    project = tomllib.loads((root.parents[1] / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = project["tool"]["setuptools"]["package-data"]["medface"]
    templates = sorted((root / "templates").iterdir())
    assert templates and all(any(fnmatch.fnmatch(f"report/templates/{t.name}", p) for p in patterns)
                             for t in templates)
    evil = "<img src=x onerror=alert(1)>"
    r = Result(command="toy.measure", summary={evil: evil}, tables={evil: [{evil: evil}]}, limits=[evil],
               outputs={evil: evil})
    page = render_html(r, title=evil, purpose=evil, sections=[Section(evil, text=evil, caption=evil)])
    assert "<img" not in page and page.count("&lt;img src=x onerror=alert(1)&gt;") >= 9


def test_importing_the_report_package_loads_neither_jinja_nor_the_plugin_layer():
    code = "import sys, medface.report; print(sorted(m for m in ('jinja2', 'medface.plugin') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
