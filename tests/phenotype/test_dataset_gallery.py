"""GMDB-layout data sets and embedding galleries: reading, errors, adding cases."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from medface.errors import InputError, ModelError
from medface_phenotype.dataset import read_dataset
from medface_phenotype.gallery import Gallery, load_gallery, save_gallery


def _folder(tmp_path, rows, photos=("a.png", "b.jpg", "c.png")):
    images = tmp_path / "images"
    images.mkdir()
    for name in photos:
        Image.new("RGB", (8, 8)).save(images / name)
    lines = ["image_id,subject,label,age"] + [",".join(r) for r in rows]
    (tmp_path / "metadata.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return tmp_path


def test_reads_gmdb_layout_with_and_without_extensions(tmp_path):
    root = _folder(tmp_path, [("a.png", "s1", "cdls", "4"), ("b", "s1", "cdls", "5"), ("c", "s2", "unaffected", "")])
    ds = read_dataset(root)
    assert [r.path.name for r in ds.records] == ["a.png", "b.jpg", "c.png"]
    assert ds.conditions() == ["cdls"] and ds.subjects == ["s1", "s1", "s2"]
    assert ds.records[0].extra == {"age": "4"}


def test_every_csv_problem_is_listed_with_its_line(tmp_path):
    root = _folder(tmp_path, [("a.png", "s1", "cdls", ""), ("a.png", "s2", "cdls", ""), ("missing", "s3", "x", ""),
                              ("b", "s1", "kbg", ""), ("c", "", "x", "")])
    with pytest.raises(InputError) as err:
        read_dataset(root)
    text = str(err.value)
    for expected in ("line 3: image_id 'a.png' appears twice", "line 4: no photo 'missing'",
                     "line 5: subject 's1' is labelled both 'cdls' and 'kbg'", "line 6: empty subject"):
        assert expected in text


def test_missing_columns_and_folder(tmp_path):
    (tmp_path / "metadata.csv").write_text("image,label\nx,y\n", encoding="utf-8")
    with pytest.raises(InputError, match="missing column.*image_id.*subject"):
        read_dataset(tmp_path)
    with pytest.raises(InputError, match="does not exist"):
        read_dataset(tmp_path / "nowhere")


def _gallery(model=None):
    e = np.array([[1, 0, 0], [0.9, 0.1, 0], [0, 1, 0], [0, 0.8, 0.2]], np.float32)
    return Gallery(e, ["i1", "i2", "i3", "i4"], ["s1", "s1", "s2", "s3"], ["A", "A", "B", "B"],
                   model or {"name": "m", "version": "1", "sha256": "a" * 64})


def test_gallery_ranks_nearest_per_condition_and_round_trips(tmp_path):
    g = _gallery()
    ranked = g.nearest(np.array([0.1, 1.0, 0.0]))
    assert [r["label"] for r in ranked] == ["B", "A"] and ranked[0]["image_id"] == "i3"
    save_gallery(g, tmp_path)
    back = load_gallery(tmp_path)
    assert back.labels == g.labels and np.allclose(back.embeddings, g.embeddings) and back.model == g.model


def test_new_condition_is_matched_after_adding_without_retraining(tmp_path):
    g = _gallery()
    query = np.array([0.0, 0.1, 1.0])
    assert g.nearest(query)[0]["label"] == "B"
    grown = g.add(np.array([[0.0, 0.0, 1.0]]), ["i5"], ["s9"], ["C"])
    assert grown.nearest(query)[0]["label"] == "C"
    with pytest.raises(InputError, match="already in the gallery"):
        grown.add(np.array([[1.0, 0, 0]]), ["i5"], ["s10"], ["A"])
    with pytest.raises(InputError, match="dimensions"):
        grown.add(np.ones((1, 4)), ["i6"], ["s10"], ["A"])


def test_inconsistent_or_foreign_galleries_are_refused(tmp_path):
    save_gallery(_gallery(), tmp_path)
    index = json.loads((tmp_path / "gallery.json").read_text(encoding="utf-8"))
    index["rows"] = index["rows"][:2]
    (tmp_path / "gallery.json").write_text(json.dumps(index), encoding="utf-8")
    with pytest.raises(InputError, match="inconsistent"):
        load_gallery(tmp_path)
    with pytest.raises(ModelError, match="not with the model in use"):
        _gallery().check_model({"name": "m", "version": "2", "sha256": "b" * 64})
    with pytest.raises(InputError, match="NaN"):
        Gallery(np.full((1, 3), np.nan), ["x"], ["s"], ["A"])
