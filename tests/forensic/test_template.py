"""The template head is a versioned data file checked by its sha256, and the phantom still
builds it (else a new template version and a new MODEL_VERSION are due)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from medface_forensic.template import (PARTS, TEMPLATE_VERSION, build_template_files, data_paths, load_template,
                                       template_head)

from medface.errors import ModelError


def test_shipped_template_loads_with_its_landmarks_and_subject():
    head = template_head()
    assert head.version == TEMPLATE_VERSION
    assert len(head.skin.vertices) > 50_000 and len(head.cranium.vertices) > 50_000
    assert {"n", "g", "po_l", "prn", "sn"} <= set(head.landmarks)
    assert (head.subject.sex, head.subject.age, head.subject.bmi) == ("F", 40.0, 24.0)


def test_a_damaged_or_mismatched_template_file_is_refused(tmp_path):
    npz, desc = data_paths()
    shutil.copy(npz, tmp_path / npz.name)
    shutil.copy(desc, tmp_path / desc.name)
    assert load_template(folder=tmp_path).sha256 == template_head().sha256
    data = bytearray((tmp_path / npz.name).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tmp_path / npz.name).write_bytes(bytes(data))
    with pytest.raises(ModelError, match="does not match the sha256"):
        load_template(folder=tmp_path)
    info = json.loads(desc.read_text(encoding="utf-8"))
    (tmp_path / desc.name).write_text(json.dumps(dict(info, version=99)), encoding="utf-8")
    with pytest.raises(ModelError, match="not a version-1"):
        load_template(folder=tmp_path)
    with pytest.raises(ModelError, match="missing"):
        load_template(version=7, folder=tmp_path)


def test_the_phantom_still_builds_the_shipped_template(tmp_path):
    """Regenerating the files gives the triangles that ship and the same vertices and landmarks
    to a nanometre: numpy's vectorised sin, exp, ... may differ in the last bit from one CPU to
    another (seen: 439 skin vertices 1e-14 mm apart on an AMD EPYC), so bit equality would test
    the machine, not the phantom."""
    shipped = template_head()
    npz, desc = build_template_files(tmp_path)
    again = load_template(folder=tmp_path)
    for part in PARTS:
        assert np.allclose(getattr(again, part).vertices, getattr(shipped, part).vertices, rtol=0, atol=1e-6), part
        assert np.array_equal(getattr(again, part).faces, getattr(shipped, part).faces), part
    assert list(again.landmarks) == list(shipped.landmarks)
    assert all(np.allclose(again.landmarks[k], shipped.landmarks[k], rtol=0, atol=1e-6) for k in shipped.landmarks)
    assert json.loads(desc.read_text(encoding="utf-8"))["source"].startswith("medface.phantom.make_head")
