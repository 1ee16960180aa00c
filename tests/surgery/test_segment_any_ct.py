"""Any CT through `surgery segment` (and `inspect-ct`): a result with warnings or a clear InputError.

Every volume is written by the test (NIfTI, MetaImage or DICOM in tmp_path) from the phantom
sample CT taken at 4 mm (every second voxel; about 1 s per segmentation) and run through
``medface.run`` so the command path is covered. Issue 14's reproducers: the tilted-gantry 8-bit
scan that crashed in the mandible split, a single slice refused as "nothing above the skin
threshold", a spacing in cm giving "no bone found", and a bare skull on the scanner table
segmented with ``--bone-hu 500`` without a word about the missing soft tissue.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import medface
from medface import io
from medface.data import Volume
from medface.errors import InputError

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data" / "head_ct.nii.gz"
FACES = dict(target_faces=1000, figures=False)


@pytest.fixture(scope="module")
def full() -> Volume:
    return io.read_volume(SAMPLE)


@pytest.fixture(scope="module")
def small(full) -> Volume:
    """The phantom head CT (HU) on a 4 mm grid; LPS, identity direction, k = superior."""
    return Volume(np.ascontiguousarray(full.array[::2, ::2, ::2]), spacing=(4.0, 4.0, 4.0), origin=full.origin,
                  units="HU")


@pytest.fixture(scope="module")
def reference(small, tmp_path_factory):
    path = _write(tmp_path_factory.mktemp("ref"), small.array, small)
    return medface.run("surgery.segment", ct=path, **FACES)


def _write(folder: Path, array: np.ndarray, like: Volume, name: str = "ct.nii.gz", spacing=None) -> Path:
    vol = Volume(np.ascontiguousarray(array), spacing=spacing or like.spacing, origin=like.origin)
    return io.write_volume(vol, folder / name)


def _eight_bit(hu: np.ndarray) -> np.ndarray:
    """A windowed 8-bit export: -1000..2000 HU to 0..255."""
    return np.clip((hu.astype(np.float32) + 1000.0) / 3000.0 * 255.0, 0, 255).round().astype(np.uint8)


def _tilted(hu: np.ndarray, degrees: float) -> np.ndarray:
    """The head as a tilted gantry records it on a regular grid: each slice shifted along j."""
    from scipy.ndimage import affine_transform

    m = np.eye(3)
    m[1, 0] = np.tan(np.radians(degrees))  # j shifts with k
    centre = (np.array(hu.shape) - 1) / 2.0
    return affine_transform(hu.astype(np.float32), m, offset=centre - m @ centre, order=1, cval=-1000.0)


def _volume_ml(result, name: str) -> float:
    return result.metrics[f"{name}_volume_ml"]


def test_reference_has_no_false_alarms(reference):
    """The whole phantom head: no cut, no table, soft tissue present (only the voxel-size note and,
    the 2.5 mm gap between the jaws being finer than the 4 mm voxels, the note that the mandible
    was cut loose by erosion)."""
    notes = ("coarse voxels", "the mandible touches the skull")
    assert [w for w in reference.warnings if not w.startswith(notes)] == []
    assert set(reference.data) >= {"skin", "skull", "mandible"}


def test_mandible_split_survives_a_first_candidate_that_is_not_the_chin():
    """The crash of issue 14: the candidate loop read the erosion labels after the watershed had
    overwritten them, so the next candidate was empty (`zero-size array to reduction operation
    maximum`). Here an upper-jaw plate comes loose first, fails the chin test, and the mandible
    (the third component) is found next."""
    from medface.anatomy.ct_segmentation import split_mandible

    bone = np.zeros((64, 64, 64), bool)  # [k, j, i] at 2 mm; superior = -k, anterior = -j
    bone[4:30, 10:54, 10:54] = True  # cranium
    bone[34:42, 4:22, 8:56] = True  # a wide inferior-anterior plate, larger than the mandible
    bone[50:58, 2:18, 14:50] = True  # the mandible: lowest and in front (holds the chin)
    bone[30:34, 12, 32] = True  # one-voxel bridges, cut by a 2 mm erosion
    bone[42:50, 10, 32] = True
    cranium, mandible, how = split_mandible(bone, [], (2.0, 2.0, 2.0), np.array([0.0, -1.0, 0.0]),
                                            np.array([0.0, 0.0, -1.0]))
    assert mandible is not None and "watershed" in how
    assert mandible[50:58, 2:18, 14:50].mean() > 0.95  # the whole lower piece ...
    assert not mandible[34:42].any() and not (cranium & mandible).any()  # ... and nothing of the plate


def test_tilted_gantry_8bit_export_needs_thresholds_then_segments(small, tmp_path):
    path = _write(tmp_path, _eight_bit(_tilted(small.array, 20.0)), small)
    with pytest.raises(InputError, match="values 0-255 look like an 8-bit export, not Hounsfield units") as err:
        medface.run("surgery.segment", ct=path, **FACES)
    assert "--bone-hu" in err.value.hint and "--skin-hu" in err.value.hint
    result = medface.run("surgery.segment", ct=path, bone_hu=300.0, skin_hu=-400.0, **FACES)
    assert any("8-bit export" in w and "bone_hu 300" in w for w in result.warnings)
    for name in ("skin", "skull"):
        assert result.data[name].is_watertight(), name
    assert 600 < _volume_ml(result, "skull") < 1200 and 3000 < _volume_ml(result, "skin") < 4800
    inspected = medface.run("surgery.inspect-ct", ct=path)
    assert any("8-bit export" in w and "--bone-hu" in w for w in inspected.warnings)


def test_sheared_direction_is_refused_clearly(small, tmp_path):
    """A gantry-tilt shear in the file's orientation cannot be a volume's direction: an InputError
    from the reader, not a traceback later."""
    u8 = _eight_bit(small.array)
    nk, nj, ni = u8.shape
    header = ("ObjectType = Image\nNDims = 3\nBinaryData = True\nBinaryDataByteOrderMSB = False\n"
              f"TransformMatrix = 1 0 0 0 1 0 0 {np.tan(np.radians(20.0)):.6f} 1\n"
              f"Offset = {' '.join(str(o) for o in small.origin)}\nElementSpacing = 4 4 4\n"
              f"DimSize = {ni} {nj} {nk}\nElementType = MET_UCHAR\nElementDataFile = LOCAL\n")
    path = tmp_path / "sheared.mha"
    path.write_bytes(header.encode("utf-8") + u8.tobytes())
    with pytest.raises(InputError, match="rotation|orthonormal|shear"):
        medface.run("surgery.segment", ct=path, bone_hu=300.0, **FACES)


@pytest.mark.parametrize("slices", [1, 2])
def test_one_or_two_slices_are_refused_as_not_a_volume(small, tmp_path, slices):
    k = small.array.shape[0] // 2
    path = _write(tmp_path, small.array[k:k + slices], small)
    thickness = f"{slices * 4:g} mm along k"
    with pytest.raises(InputError, match=f"{slices} slices? thick") as err:
        medface.run("surgery.segment", ct=path, **FACES)
    assert thickness in str(err.value) and "volume" in str(err.value)
    assert "skin threshold" not in str(err.value)
    inspected = medface.run("surgery.inspect-ct", ct=path)  # the same count and thickness
    assert inspected.metrics["slices"] == slices and inspected.metrics["thickness_mm"] == slices * 4
    assert any(thickness in w for w in inspected.warnings)


def test_single_dicom_slice_reports_one_thickness(full, tmp_path):
    """Issue 14: one real slice (DICOM, HU) was refused with "nothing above the skin threshold"
    while inspect-ct counted another thickness."""
    one = Volume(np.ascontiguousarray(full.array[70:71]), spacing=full.spacing, origin=full.origin, units="HU")
    folder = tmp_path / "slice"
    io.write_dicom_series(one, folder)
    inspected = medface.run("surgery.inspect-ct", ct=folder)
    with pytest.raises(InputError, match="1 slice thick") as err:
        medface.run("surgery.segment", ct=folder, **FACES)
    assert f"({inspected.metrics['thickness_mm']:g} mm along k)" in str(err.value)


@pytest.mark.parametrize("case,match", [
    ("empty", "every voxel of the CT has the value -1024: the field of view is empty"),
    ("air", "the CT shows only air"),
    ("bone", "one material only"),
], ids=["empty-field-of-view", "only-air", "only-bone"])
def test_nothing_to_segment_is_refused_with_what_is_there(small, tmp_path, case, match):
    rng = np.random.default_rng(0)
    shape = small.array.shape
    array = {"empty": np.full(shape, -1024, np.int16),
             "air": (-1000 + rng.normal(0, 10, shape)).astype(np.int16),
             "bone": rng.normal(1200, 60, shape).astype(np.int16)}[case]
    path = _write(tmp_path, array, small)
    with pytest.raises(InputError, match=match) as err:
        medface.run("surgery.segment", ct=path, **FACES)
    assert err.value.hint
    medface.run("surgery.inspect-ct", ct=path)  # inspecting it still works


def test_anisotropic_10mm_slices_segment_with_a_warning(full, reference, tmp_path):
    path = _write(tmp_path, full.array[::5], full, spacing=(2.0, 2.0, 10.0))
    result = medface.run("surgery.segment", ct=path, **FACES)
    assert any(w.startswith("coarse voxels (10 mm along k)") for w in result.warnings)
    for name in ("skin", "skull"):
        assert result.data[name].is_watertight(), name
        assert abs(_volume_ml(result, name) / _volume_ml(reference, name) - 1) < 0.1, name


@pytest.mark.parametrize("cut,message", [("top", "the top of the head (vertex) is missing"),
                                         ("chin", "the chin is missing")])
def test_a_scan_that_cuts_the_head_says_which_part_is_missing(small, tmp_path, cut, message):
    nk = small.array.shape[0]  # k runs from the neck (0) to the vertex
    array = small.array[: int(0.75 * nk)] if cut == "top" else small.array[int(0.25 * nk):]
    origin = small.origin if cut == "top" else small.index_to_physical([0, 0, int(0.25 * nk)])
    path = io.write_volume(Volume(np.ascontiguousarray(array), spacing=small.spacing, origin=origin),
                           tmp_path / "cut.nii.gz")
    result = medface.run("surgery.segment", ct=path, **FACES)
    cuts = [w for w in result.warnings if "cuts the head" in w]
    assert len(cuts) == 1 and message in cuts[0]
    assert result.data["skull"].is_watertight()


def test_nan_outside_a_round_field_of_view_is_treated_as_padding(small, reference, tmp_path):
    array = small.array.astype(np.float32)
    nk, nj, ni = array.shape
    j, i = np.ogrid[:nj, :ni]
    outside = (j - nj / 2) ** 2 / (nj / 2) ** 2 + (i - ni / 2) ** 2 / (ni / 2) ** 2 > 1.0
    array[:, outside] = np.nan  # MetaImage keeps NaN (ITK's NIfTI reader turns it into 0)
    result = medface.run("surgery.segment", ct=_write(tmp_path, array, small, "ct.mha"), **FACES)
    assert any("NaN or infinite" in w for w in result.warnings)
    assert abs(_volume_ml(result, "skull") / _volume_ml(reference, "skull") - 1) < 0.03


def test_spacing_in_cm_gets_a_units_message(small, tmp_path):
    path = _write(tmp_path, small.array, small, spacing=(0.4, 0.4, 0.4))
    with pytest.raises(InputError, match=r"the head is 2\.\d cm wide.*is the spacing in cm\? medface needs mm"):
        medface.run("surgery.segment", ct=path, **FACES)


def _on_table(hu: np.ndarray, value: float = 100.0) -> tuple[np.ndarray, int]:
    """The head on a 16 mm table behind it (+j is posterior): the array and the table's first row."""
    out = np.pad(hu, ((0, 0), (0, 8), (0, 0)), constant_values=-1000)
    back = int(np.nonzero((out > -400).any(axis=(0, 2)))[0].max())
    out[:, back - 1: back + 3, :] = value  # touching the back of the head
    return out, back - 1


def test_scanner_table_is_removed(small, reference, tmp_path):
    array, row = _on_table(small.array)
    result = medface.run("surgery.segment", ct=_write(tmp_path, array, small), **FACES)
    assert any("scanner table" in w for w in result.warnings)
    table_y = small.origin[1] + 4.0 * row  # centre of the table's first voxel row (it runs 16 mm beyond)
    assert result.data["skin"].vertices[:, 1].max() <= table_y + 2.0  # the skin stops where the table starts
    assert abs(_volume_ml(result, "skin") / _volume_ml(reference, "skin") - 1) < 0.02


def test_bare_skull_on_the_table_with_bone_hu_500_warns_of_no_soft_tissue(small, tmp_path):
    """Issue 14: an 8-bit scan of a dry skull with --bone-hu 500: the "skin" was the bare skull
    plus the table, without a warning."""
    rng = np.random.default_rng(1)
    dry = np.where(small.array >= 300, small.array, -1000 + rng.normal(0, 10, small.array.shape))
    array, row = _on_table(dry)
    result = medface.run("surgery.segment", ct=_write(tmp_path, _eight_bit(array), small), bone_hu=500.0, **FACES)
    assert any("no soft tissue" in w and "dry skull" in w for w in result.warnings)
    assert any("scanner table" in w for w in result.warnings)
    assert result.data["skin"].vertices[:, 1].max() <= small.origin[1] + 4.0 * row + 2.0
