"""Volume reading and writing: geometry survives every format, bad files give clear errors."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from medface.data import Volume
from medface.errors import InputError, OutputError, ParameterError
from medface.io import read_volume, write_dicom_series, write_mesh, write_volume
from medface.io.volumes import uid_from_seed


def rotation(ax: float, az: float) -> np.ndarray:
    """An oblique direction: a rotation about x, then about z."""
    cx, sx, cz, sz = np.cos(ax), np.sin(ax), np.cos(az), np.sin(az)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ rx


@pytest.fixture
def oblique() -> Volume:
    """Anisotropic spacing, a non-zero origin and an oblique, non-axial direction; HU-like values."""
    values = np.random.default_rng(7).normal(40.0, 400.0, size=(6, 9, 11))  # [k, j, i]
    return Volume(values, spacing=(0.7, 0.9, 2.5), origin=(-123.456, 78.9, -33.3),
                  direction=rotation(0.2, 0.3), units="HU")


def first_slices(volume: Volume, n: int) -> Volume:
    return Volume(volume.array[:n], volume.spacing, volume.origin, volume.direction, units=volume.units)


def assert_same_geometry(a: Volume, b: Volume, origin_tol: float = 1e-6) -> None:
    assert a.array.shape == b.array.shape
    np.testing.assert_allclose(a.spacing, b.spacing, rtol=0, atol=1e-6)
    np.testing.assert_allclose(a.direction, b.direction, rtol=0, atol=1e-6)
    np.testing.assert_allclose(a.origin, b.origin, rtol=0, atol=origin_tol)


# round trips ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["v.nii", "v.nii.gz", "v.nrrd", "v.mha", "v.mhd"])
def test_round_trip_keeps_geometry_and_values(tmp_path, oblique, name):
    written = write_volume(oblique, tmp_path / "out" / name)
    back = read_volume(written)
    # NIfTI stores the geometry in 32-bit floats: an origin near 123 mm comes back within ~2e-6 mm.
    assert_same_geometry(oblique, back, origin_tol=1e-5 if ".nii" in name else 1e-9)
    np.testing.assert_array_equal(back.array, oblique.array)
    assert back.units == ""  # only DICOM CT says its values are HU
    assert back.source == str(written)
    assert not [p for p in written.parent.iterdir() if p.name.startswith(".")], "temporary files left behind"


def test_integer_volume_keeps_dtype(tmp_path, oblique):
    labels = oblique.with_array((oblique.array > 0).astype(np.uint8))
    back = read_volume(write_volume(labels, tmp_path / "mask.nrrd"))
    assert back.array.dtype == np.uint8
    np.testing.assert_array_equal(back.array, labels.array)


def test_write_volume_refuses_unknown_extensions(tmp_path, oblique):
    with pytest.raises(OutputError, match=r"\.nii\.gz.*\.mha"):
        write_volume(oblique, tmp_path / "v.tiff")
    with pytest.raises(OutputError, match="write_dicom_series"):
        write_volume(oblique, tmp_path / "v.dcm")


def test_failed_write_keeps_the_existing_file(tmp_path, oblique, monkeypatch):
    import SimpleITK as sitk

    target = write_volume(oblique, tmp_path / "v.nrrd")
    before = target.read_bytes()

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(sitk, "WriteImage", broken)
    with pytest.raises(OutputError, match="disk full") as info:
        write_volume(oblique.with_array(oblique.array * 2), target)
    assert str(target) in str(info.value)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.nrrd"]


# DICOM ------------------------------------------------------------------------------------
def test_dicom_round_trip_keeps_oblique_geometry_and_hu(tmp_path, oblique):
    files = write_dicom_series(oblique, tmp_path / "ct")
    assert [f.name for f in files] == [f"IMG{k:04d}.dcm" for k in range(1, 7)]
    back = read_volume(tmp_path / "ct")
    assert_same_geometry(oblique, back, origin_tol=1e-6)
    assert back.units == "HU"
    assert back.metadata["modality"] == "CT" and back.metadata["files"] == 6
    # float HU go through int16 with a rescale slope of about range / 64000
    slope = (oblique.array.max() - oblique.array.min()) / 64000
    np.testing.assert_allclose(back.array, oblique.array, rtol=0, atol=slope)


def test_dicom_integer_hu_are_exact(tmp_path, oblique):
    hu = oblique.with_array(np.clip(np.round(oblique.array), -1024, 3071).astype(np.int16))
    back = read_volume(write_dicom_series(hu, tmp_path / "ct")[0].parent)
    np.testing.assert_array_equal(back.array, hu.array)
    single = read_volume(tmp_path / "ct" / "IMG0003.dcm")
    assert single.shape_ijk == (11, 9, 1)
    np.testing.assert_allclose(single.origin, hu.index_to_physical([0, 0, 2]), atol=1e-6)
    np.testing.assert_array_equal(single.array[0], hu.array[2])


def test_dicom_writing_is_byte_identical(tmp_path, oblique):
    first = write_dicom_series(oblique, tmp_path / "a")
    second = write_dicom_series(oblique, tmp_path / "b")
    assert [f.read_bytes() for f in first] == [f.read_bytes() for f in second]
    other = write_dicom_series(oblique, tmp_path / "c", uid_seed="another seed")
    assert first[0].read_bytes() != other[0].read_bytes()


def test_dicom_uids_are_valid_and_deterministic():
    uid = uid_from_seed("phantom 1")
    assert uid == uid_from_seed("phantom 1") != uid_from_seed("phantom 2")
    assert uid.startswith("2.25.") and len(uid) <= 64 and uid.replace(".", "").isdigit()


def test_mr_series_has_no_hu(tmp_path, oblique):
    back = read_volume(write_dicom_series(oblique, tmp_path / "mr", modality="MR")[0].parent)
    assert back.units == "" and back.metadata["modality"] == "MR"


def test_dicom_folder_with_two_series_is_refused(tmp_path, oblique):
    folder = tmp_path / "mixed"
    write_dicom_series(oblique, folder, series_uid="1.2.3.4", uid_seed="first")
    write_dicom_series(first_slices(oblique, 4), tmp_path / "other", series_uid="1.2.3.5",
                       uid_seed="second")
    for f in (tmp_path / "other").iterdir():
        shutil.move(f, folder / ("B" + f.name))
    with pytest.raises(InputError) as info:
        read_volume(folder)
    message = str(info.value)
    assert str(folder) in message and "2 DICOM series" in message
    assert "1.2.3.4 (6 files)" in message and "1.2.3.5 (4 files)" in message
    assert "series_uid" in message
    picked = read_volume(folder, series_uid="1.2.3.5")
    assert picked.shape_ijk == (11, 9, 4)
    with pytest.raises(InputError, match="no DICOM series with UID 9.9"):
        read_volume(folder, series_uid="9.9")


def test_dicom_series_with_a_missing_slice_is_refused(tmp_path, oblique):
    files = write_dicom_series(oblique, tmp_path / "ct")
    files[3].unlink()
    with pytest.raises(InputError, match="not evenly spaced") as info:
        read_volume(tmp_path / "ct")
    assert str(tmp_path / "ct") in str(info.value)


def test_write_dicom_series_protects_non_empty_folders(tmp_path, oblique):
    folder = tmp_path / "ct"
    write_dicom_series(oblique, folder)
    with pytest.raises(OutputError, match="not empty"):
        write_dicom_series(oblique, folder)
    smaller = first_slices(oblique, 2)
    write_dicom_series(smaller, folder, overwrite=True)
    assert sorted(p.name for p in folder.iterdir()) == ["IMG0001.dcm", "IMG0002.dcm"]
    with pytest.raises(ParameterError, match="not a DICOM UID"):
        write_dicom_series(oblique, tmp_path / "x", study_uid="1.2.abc")


def test_series_uid_only_for_folders(tmp_path, oblique):
    with pytest.raises(ParameterError, match="series_uid"):
        read_volume(write_volume(oblique, tmp_path / "v.nrrd"), series_uid="1.2")


# bad input --------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["v.nii", "v.nii.gz"])
def test_truncated_nifti_is_refused(tmp_path, oblique, name):
    # ITK itself would read these and silently fill the missing voxels with zeros.
    data = write_volume(oblique, tmp_path / name).read_bytes()
    cut = tmp_path / ("cut_" + name)
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="truncated") as info:
        read_volume(cut)
    assert str(cut) in str(info.value)


def test_truncated_nrrd_is_refused(tmp_path, oblique):
    data = write_volume(oblique, tmp_path / "v.nrrd").read_bytes()
    cut = tmp_path / "cut.nrrd"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="cannot be read as a NRRD image") as info:
        read_volume(cut)
    assert str(cut) in str(info.value)


def test_misnamed_nifti_is_read_by_content(tmp_path, oblique):
    data = write_volume(oblique, tmp_path / "v.nii.gz").read_bytes()
    odd = tmp_path / "scan.bin"
    odd.write_bytes(data)
    assert_same_geometry(oblique, read_volume(odd), origin_tol=1e-5)


def test_text_file_is_not_a_volume(tmp_path):
    notes = tmp_path / "notes.nii"
    notes.write_text("patient notes, not an image\n")
    with pytest.raises(InputError, match="does not recognise") as info:
        read_volume(notes)
    assert str(notes) in str(info.value) and "NIfTI" in str(info.value)


def test_mesh_is_not_a_volume(tmp_path):
    from medface.data import SurfaceMesh

    mesh = SurfaceMesh(np.eye(3), [[0, 1, 2]])
    stl = write_mesh(mesh, tmp_path / "skull.nrrd.stl")
    with pytest.raises(InputError, match="is a binary STL mesh, not a volume"):
        read_volume(stl)


def test_empty_and_missing_files(tmp_path):
    empty = tmp_path / "empty.nii.gz"
    empty.touch()
    with pytest.raises(InputError, match="empty") as info:
        read_volume(empty)
    assert str(empty) in str(info.value)
    with pytest.raises(InputError, match="does not exist"):
        read_volume(tmp_path / "nowhere.nrrd")


# real data --------------------------------------------------------------------------------
def test_real_head_ct_geometry(shared_data):
    ct = read_volume(shared_data / "headsq" / "headsq.mhd")
    assert ct.shape_ijk == (64, 64, 93)
    np.testing.assert_allclose(ct.spacing, (3.2, 3.2, 1.5))
    assert ct.array.dtype == np.uint16 and ct.units == ""


def test_real_skull_mask_nrrd(shared_data):
    mask = read_volume(shared_data / "masks" / "Skull.nrrd")
    assert mask.shape_ijk == (160, 232, 160)
    np.testing.assert_allclose(mask.spacing, (1.0, 0.898437, 0.898437))
    np.testing.assert_allclose(mask.origin, (229.26, -126.419, 405.421))
    assert set(np.unique(mask.array)) <= {0, 1, 255}
