"""`phenotype screen` with the bundled demo model: what a user gets back, and what is refused."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
from PIL import Image

import medface
from medface.runtime import read_card, verify_package
from medface_phenotype.screen import DEMO_MODEL, screen_many


def test_demo_model_is_a_verified_synthetic_package_within_size():
    assert verify_package(DEMO_MODEL) == []
    card = read_card(DEMO_MODEL)
    assert card.is_synthetic and "not" in card.limitations.lower()
    size = sum(p.stat().st_size for p in DEMO_MODEL.iterdir())
    assert size < 20 * 2 ** 20
    scr = card.extra["screening"]
    assert len(scr["frequent"]) >= 8 and scr["rare"]


def test_screen_writes_ranking_report_and_pictures_but_not_the_photo(repo_root, tmp_path):
    photo = repo_root / "sample_data" / "condition_hypertelorism.png"
    out = tmp_path / "out"
    result = medface.run("phenotype.screen", image=photo, out=out)
    assert result.summary["screened"] is True and result.summary["verdict"].startswith("acceptable")
    rows = result.tables["conditions"]
    card = read_card(DEMO_MODEL)
    assert [r["rank"] for r in rows] == list(range(1, len(rows) + 1))
    sims = [r["similarity"] for r in rows]
    assert sims == sorted(sims, reverse=True)
    assert {r["condition"] for r in rows} <= set(card.extra["screening"]["frequent"] + card.extra["screening"]["rare"])
    assert 0.0 <= result.summary["syndromic_score"] <= 1.0
    saved = json.loads((out / "result.json").read_text(encoding="utf-8"))
    assert saved["metrics"]["face"]["box"] and len(saved["metrics"]["face"]["points5"]) == 5
    assert saved["metrics"]["quality"]["refused"] is False
    assert saved["provenance"]["models"][0]["sha256"] == card.sha256
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "aligned_face" in html and "attention" in html and "synthetic" in html
    attention = np.asarray(Image.open(out / "attention.png"))
    aligned = np.asarray(Image.open(out / "aligned_face.png"))
    assert attention.shape == aligned.shape == (224, 224, 3) and np.abs(attention.astype(int) - aligned).mean() > 3
    assert not any(p.name.startswith("photo") for p in out.iterdir())  # the photo is not copied by default
    # the pictures are listed as outputs and shown in the report as figures, under stable names
    assert list(result.outputs) == ["aligned_face", "attention", "face_points", "attention_on_photo", "result",
                                    "report"]
    trained = next(r["condition"] for r in rows if r["trained"])
    assert result.figures == {"aligned_face": str(out / "aligned_face.png"),
                              f"attention ({trained})": str(out / "attention.png")}


def test_refused_photo_gives_a_verdict_and_no_ranking(tmp_path):
    blank = tmp_path / "wall.png"
    Image.new("RGB", (400, 300), (180, 170, 160)).save(blank)
    result = medface.run("phenotype.screen", image=blank, out=tmp_path / "out")
    assert result.summary["screened"] is False
    assert result.summary["verdict"] == "refused: no face was found in the photo"
    assert "conditions" not in result.tables


def test_cli_exit_codes_for_bad_files(tmp_path):
    fake = tmp_path / "x.jpg"
    fake.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    run = subprocess.run([sys.executable, "-m", "medface", "phenotype", "screen", "--image", str(fake)],
                         capture_output=True, text=True, encoding="utf-8")
    assert run.returncode == 3 and "x.jpg" in run.stderr and "truncated" in run.stderr  # InputError


def test_batch_screening_reports_refused_items_by_index(repo_root):
    photo = repo_root / "sample_data" / "photo_frontal.png"
    wall = np.full((300, 400, 3), 170, np.uint8)
    out = screen_many([photo, wall, photo], workers=2)
    assert [r["screened"] for r in out] == [True, False, True]
    assert "no face" in out[1]["verdict"]
    assert out[0]["conditions"] == out[2]["conditions"]


def test_gallery_add_is_also_spelled_with_a_space():
    run = subprocess.run([sys.executable, "-m", "medface", "phenotype", "gallery", "add", "--help"],
                         capture_output=True, text=True, encoding="utf-8")
    assert run.returncode == 0 and "usage: medface phenotype gallery-add" in run.stdout


def _grey_photo(path):
    Image.new("RGB", (200, 200), (128, 128, 128)).save(path)
    return path


def test_cli_refused_photo_exits_8_and_still_writes_the_result(tmp_path, capsys):
    from medface.cli import main

    out = tmp_path / "out"
    assert main(["phenotype", "screen", "--image", str(_grey_photo(tmp_path / "grey.png")), "--out", str(out)]) == 8
    assert "input refused: no face was found in the photo" in capsys.readouterr().err
    saved = json.loads((out / "result.json").read_text(encoding="utf-8"))
    assert saved["summary"]["screened"] is False and saved["status"] == "refused"
    assert saved["refusal"] == "no face was found in the photo"
    assert (out / "report.html").is_file()
    assert main(["phenotype", "screen", "--image", str(tmp_path / "grey.png"), "--json"]) == 8
    doc = json.loads(capsys.readouterr().out)
    assert (doc["status"], doc["exit_code"], doc["summary"]["screened"]) == ("refused", 8, False)


def _png_declaring(path, width, height):
    """A 1x1 PNG whose IHDR claims width x height (CRC fixed): a bomb's header, 70 bytes."""
    import io
    import struct
    import zlib

    buffer = io.BytesIO()
    Image.new("RGB", (1, 1)).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    struct.pack_into(">II", data, 16, width, height)  # IHDR data starts at byte 16
    struct.pack_into(">I", data, 29, zlib.crc32(bytes(data[12:29])))  # the CRC of "IHDR" + its 13 bytes
    path.write_bytes(bytes(data))
    return path


def test_cli_400_megapixel_photo_is_too_large_not_corrupt(tmp_path, capsys):
    from medface.cli import main

    photo = _png_declaring(tmp_path / "huge.png", 20_000, 20_000)
    assert main(["phenotype", "screen", "--image", str(photo), "--out", str(tmp_path / "out")]) == 3
    err = capsys.readouterr().err
    assert "too large" in err and "400,000,000 pixels" in err and "200,000,000" in err and "20000 x 20000" in err
    assert "corrupt" not in err and not (tmp_path / "out").exists()  # refused before anything is written
    small = _png_declaring(tmp_path / "small.png", 1, 1)
    assert medface.io.read_image(small).pixels.shape == (1, 1, 3)  # a normal image still reads


def test_cli_screen_records_the_device_it_ran_on(repo_root, tmp_path):
    import torch

    from medface.cli import main

    out = tmp_path / "out"
    assert main(["phenotype", "screen", "--image", str(repo_root / "sample_data" / "photo_frontal.png"),
                 "--out", str(out)]) == 0
    provenance = json.loads((out / "result.json").read_text(encoding="utf-8"))["provenance"]
    if torch.cuda.is_available():  # "auto" may pick the GPU: then its index is named
        assert provenance["device"] == "cpu" or provenance["device"].startswith("cuda:")
    else:
        assert provenance["device"] == "cpu"
    assert provenance["parameters"]["device"] == "auto"  # the request, as given
