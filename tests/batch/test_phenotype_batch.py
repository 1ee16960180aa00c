"""`phenotype screen` as a batch on a real local Ray cluster (ray.init(num_cpus=2)): the streaming
pipeline (screen_stages.py) gives what screening the photos one by one gives, and records a
corrupt file, a photo without a face, a refused profile and a photo whose worker is killed while
every other photo is done.

The killed worker: the batch runs `killer.screen`, a test plugin whose command and stages are
phenotype's own (imported from medface_phenotype, the manifest's parameters copied from
phenotype's) except that they kill their own process (SIGKILL, as the kernel's out-of-memory
killer does) on a photo whose file name says ``killme``."""

from __future__ import annotations

import json
import re
import shutil
import time
import warnings
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import medface
from medface.batches.results import read_results
from medface.batches.worker import first_line, headline
from medface.errors import InputError

ray = pytest.importorskip("ray")

#: phantom photos of the sample data: five screened, one profile that the quality gate refuses
SAMPLE = ("condition_hypertelorism", "condition_micrognathia", "condition_midface_retrusion", "photo_frontal",
          "photo_three_quarter_left", "photo_left")
#: (seed, condition) of rendered ones; the mandibular prognathia face is off-distribution for the demo model
RENDERED = ((0, None), (1, "hypotelorism"), (5, "mandibular_prognathia"), (7, "long_philtrum"))


def _render(k: int, condition: str | None) -> np.ndarray:
    from medface.phantom.head import make_head, sample_subject
    from medface.phantom.photo import render_photo

    subject = sample_subject(np.random.default_rng([17, k]), condition=condition, severity="severe",
                             subject_id=f"batch-{k}")
    return render_photo(make_head(subject), size=(288, 288), seed=500 + k).pixels


KILLER_CODE = '''
import os, signal
from medface_phenotype import screen as _screen
from medface_phenotype.screen_stages import ScreenStages


def _die_if_told(image):
    if "killme" in (image.source or ""):
        os.kill(os.getpid(), signal.SIGKILL)


def screen(image, **kwargs):
    _die_if_told(image)
    return _screen.screen(image, **kwargs)


class Stages(ScreenStages):
    def prepare(self, values):
        _die_if_told(values["image"])
        return super().prepare(values)
'''


def killer_manifest() -> str:
    """phenotype's `screen` command (help, parameters) as the only command of plugin `killer`."""
    import medface_phenotype

    text = (Path(medface_phenotype.__file__).parent / "medface-plugin.toml").read_text(encoding="utf-8")
    block = re.search(r'\[\[commands\]\]\nid = "screen"\n.*?(?=\n\[\[commands\]\]\n)', text, re.S).group(0)
    block = re.sub(r'python_name = ".*"', 'python_name = "killer_pkg.commands:screen"', block)
    block = re.sub(r'streaming = ".*"', 'streaming = "killer_pkg.commands:Stages"', block)
    assert "killer_pkg.commands:Stages" in block and '"image"' in block
    return ('name = "killer"\ntitle = "Killer"\nversion = "0.1.0"\ncategory = "Testing"\n'
            'contributors = ["medface tests"]\nhelp = "phenotype screen that dies on killme photos."\n\n' + block)


@pytest.fixture
def killer(medface_plugins):
    medface_plugins.include_installed()  # phenotype itself, for the one-by-one screening
    medface_plugins.add("killer_pkg", manifest=killer_manifest(), modules={"commands.py": KILLER_CODE})
    return medface_plugins


@pytest.fixture(scope="module")
def photos(tmp_path_factory, repo_root_module):
    folder = tmp_path_factory.mktemp("photos")
    for name in SAMPLE:
        shutil.copy(repo_root_module / "sample_data" / f"{name}.png", folder / f"{name}.png")
    for k, condition in RENDERED:
        Image.fromarray(_render(k, condition)).save(folder / f"rendered_{k}.png")
    frontal = np.asarray(Image.open(folder / "photo_frontal.png").convert("RGB"))
    Image.fromarray(np.ascontiguousarray(np.rot90(frontal, 1))).save(folder / "turned_frontal.png")  # no EXIF tag
    Image.new("RGB", (400, 300), (180, 170, 160)).save(folder / "wall.png")  # no face
    (folder / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40 + b"not a picture")
    return folder


@pytest.fixture(scope="module")
def repo_root_module():
    from pathlib import Path

    return Path(__file__).resolve().parents[2]


def _one_by_one(folder, out):
    """id -> ("done" | "refused", Result) or ("failed", InputError) of screening each photo alone."""
    started = time.perf_counter()
    got = {}
    for photo in sorted(folder.iterdir()):
        try:
            result = medface.run("phenotype.screen", image=photo, out=out / photo.stem)
        except InputError as exc:
            got[photo.stem] = ("failed", exc)
        else:
            got[photo.stem] = ("refused" if result.refused else "done", result)
    print(f"one by one: {time.perf_counter() - started:.1f} s")
    return got


def _ranking(table):
    return [(r["condition"], r["similarity"], r["probability"]) for r in table]


#: the command rounds similarities, probabilities and scores to 4 decimals; the network's outputs in a
#: batch differ from a photo's alone by float noise (about 1e-7), which can move such a number by one
#: unit of its last decimal when it lies on a rounding boundary: that is the tolerance
ROUNDED = 1.01e-4


def _same_numbers(a, b, tol=ROUNDED):
    if isinstance(a, dict):
        return set(a) == set(b) and all(_same_numbers(a[k], b[k], tol) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same_numbers(x, y, tol) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, (int, float)) and not isinstance(b, bool):
        return abs(a - b) <= tol
    return a == b


def test_streaming_batch_screens_like_one_by_one_and_records_bad_photos(photos, tmp_path):
    started = time.perf_counter()
    with warnings.catch_warnings():  # the pipeline itself must finish the batch, not the one-task-per-item fallback
        warnings.filterwarnings("error", message="the streaming pipeline stopped")
        res = medface.batch("phenotype.screen", photos, tmp_path / "batch", engine="ray", workers=2, streaming=True)
    batch_s = time.perf_counter() - started
    assert res.engine == "ray (streaming)" and not ray.is_initialized()
    alone = _one_by_one(photos, tmp_path / "alone")
    rows = {r["id"]: r for r in read_results(tmp_path / "batch")}
    assert set(rows) == set(alone) and len(rows) == 13
    assert {k: r["status"] for k, r in rows.items()} == {k: v[0] for k, v in alone.items()}
    # refused: no face (wall), a profile and a 45-degree three-quarter view (screening needs a frontal photo)
    assert res.counts == {"done": 9, "refused": 3, "failed": 1}
    bad = rows["corrupt"]
    assert bad["error_class"] == "InputError" and bad["error_message"] == first_line(alone["corrupt"][1].message)
    for refused in ("wall", "photo_left", "photo_three_quarter_left"):
        assert rows[refused]["status"] == "refused"
        assert rows[refused]["error_message"] == first_line(alone[refused][1].refusal)
    assert rows["wall"]["error_message"] == "no face was found in the photo"

    for item, (status, one) in alone.items():
        if status == "failed":
            continue
        saved = json.loads((tmp_path / "batch" / "items" / item / "result.json").read_text(encoding="utf-8"))
        mine = json.loads((tmp_path / "alone" / item / "result.json").read_text(encoding="utf-8"))
        assert saved["summary"].keys() == mine["summary"].keys(), item
        assert _same_numbers(saved["summary"], mine["summary"]), item
        assert saved["warnings"] == mine["warnings"]
        assert _same_numbers(saved["metrics"], mine["metrics"]), item
        assert sorted(saved["tables"]) == sorted(mine["tables"]), item
        assert sorted(saved["outputs"]) == sorted(mine["outputs"])
        assert saved["figures"].keys() == mine["figures"].keys()
        for metric, value in headline(one.summary).items():  # the table's columns are the command's own
            assert _same_numbers(rows[item][metric], value), (item, metric)
        if status != "done":
            continue
        ranked, alone_ranked = _ranking(saved["tables"]["conditions"]), _ranking(mine["tables"]["conditions"])
        assert [c for c, *_ in ranked] == [c for c, *_ in alone_ranked], item  # the same conditions in order
        assert _same_numbers(ranked, alone_ranked), item  # similarities and probabilities
        regions = "attention by region"
        assert _same_numbers(saved["tables"].get(regions), mine["tables"].get(regions)), item
        assert saved["provenance"]["models"] == mine["provenance"]["models"]
        assert saved["provenance"]["device"] == mine["provenance"]["device"]
        for picture in (p for p in saved["outputs"].values() if p.endswith(".png")):
            a = np.asarray(Image.open(tmp_path / "batch" / "items" / item / picture), np.int16)
            b = np.asarray(Image.open(tmp_path / "alone" / item / picture), np.int16)
            assert np.abs(a - b).max() <= 1, (item, picture)
    assert rows["rendered_5"]["metric_distribution"] == "off-distribution"
    assert any("turned upright" in w for w in json.loads(
        (tmp_path / "batch" / "items" / "turned_frontal" / "result.json").read_text())["warnings"])
    print(f"streaming batch of {len(rows)} photos: {batch_s:.1f} s")


@pytest.mark.parametrize("engine", ["local", "ray"])
def test_a_killed_worker_a_corrupt_file_and_a_photo_without_a_face_are_recorded(killer, photos, tmp_path, engine):
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("photo_frontal", "condition_hypertelorism", "wall", "corrupt"):
        shutil.copy(photos / f"{name}.png", folder / f"{name}.png")
    shutil.copy(photos / "photo_three_quarter_left.png", folder / "killme.png")  # a good photo: its worker dies
    with pytest.warns(RuntimeWarning, match="streaming pipeline stopped") if engine == "ray" else nullcontext():
        res = medface.batch("killer.screen", folder, tmp_path / "batch", engine=engine, workers=2,
                            streaming=True if engine == "ray" else None)
    rows = {r["id"]: r for r in read_results(tmp_path / "batch")}
    assert {k: r["status"] for k, r in rows.items()} == {"photo_frontal": "done", "condition_hypertelorism": "done",
                                                        "wall": "refused", "corrupt": "failed", "killme": "crashed"}
    assert rows["killme"]["attempts"] == 2 and rows["killme"]["error_class"] == "WorkerCrashed", rows["killme"]
    assert rows["wall"]["error_message"] == "no face was found in the photo"
    assert rows["corrupt"]["error_class"] == "InputError"
    for item in ("photo_frontal", "condition_hypertelorism"):  # done as phenotype screens them
        saved = json.loads((tmp_path / "batch" / "items" / item / "result.json").read_text(encoding="utf-8"))
        assert saved["summary"]["screened"] is True and saved["tables"]["conditions"], item
    assert res.counts == {"done": 2, "refused": 1, "failed": 1, "crashed": 1} and res.exit_code == 9

