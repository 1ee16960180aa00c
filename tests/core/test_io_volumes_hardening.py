"""Volume readers meet files no one here wrote: every input gives a Volume or an InputError.

Each reproducer of issue 14 for volumes is a test on a file written here (raw bytes, so the
header says exactly what the test wants): NIfTI vox_offset NaN / inf, NaN in srow, a gzip NRRD
declaring 2 GiB, a MetaImage with NDims = 1e308 (it killed the process), a direction
diag(2, 0.5, 1), a spacing of 1e30, a small .nii.gz that expands to 500 MiB, a named pipe, a
folder given as a file, a symbolic link loop. Also: data_files, and no patient tag in a Volume
or in a written DICOM series.
"""

from __future__ import annotations

import gzip
import os
import signal
import struct
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from medface.data import Volume
from medface.errors import InputError
from medface.io import read_volume, write_dicom_series, write_volume
from medface.io import volumes
from medface.io.volumes import data_files

needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes need a POSIX system")


# writing headers byte by byte -----------------------------------------------------------
def nifti1(dims=(5, 4, 3), datatype=4, bitpix=16, pixdim=(1.0, 1.0, 1.0, 1.0), vox_offset=352.0,
           qform=(0, (0.0,) * 6), sform=(1, (1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0)), data: bytes | None = None) -> bytes:
    """A single-file NIfTI-1 image: header, 4 empty extension bytes, then ``data``."""
    header = bytearray(348)
    struct.pack_into("<i", header, 0, 348)
    struct.pack_into("<8h", header, 40, len(dims), *dims, *([1] * (7 - len(dims))))
    struct.pack_into("<hh", header, 70, datatype, bitpix)
    struct.pack_into("<8f", header, 76, 1.0, *pixdim, *([1.0] * (7 - len(pixdim))))
    struct.pack_into("<f", header, 108, vox_offset)
    struct.pack_into("<hh", header, 252, qform[0], sform[0])
    struct.pack_into("<6f", header, 256, *qform[1])
    struct.pack_into("<12f", header, 280, *sform[1])
    header[344:348] = b"n+1\0"
    if data is None:
        data = np.arange(int(np.prod(dims)), dtype="<i2").tobytes()
    return bytes(header) + b"\0" * 4 + data


def metaimage(*, ndims="3", dim_size="5 4 3", matrix="1 0 0 0 1 0 0 0 1", spacing="1 1 1",
              data_file="LOCAL", extra="") -> bytes:
    return textwrap.dedent(f"""\
        ObjectType = Image
        NDims = {ndims}
        BinaryData = True
        BinaryDataByteOrderMSB = False
        CompressedData = False
        TransformMatrix = {matrix}
        Offset = 0 0 0
        ElementSpacing = {spacing}
        DimSize = {dim_size}
        ElementType = MET_SHORT
        {extra}ElementDataFile = {data_file}
        """).encode("ascii")


VOXELS = np.arange(60, dtype="<i2").tobytes()  # 5 x 4 x 3 int16


def nrrd(fields: str, data: bytes = b"") -> bytes:
    return b"NRRD0004\n" + textwrap.dedent(fields).encode("ascii") + b"\n" + data


def written(tmp_path, name: str, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def refused(path, *words: str) -> str:
    with pytest.raises(InputError) as info:
        read_volume(path)
    message = str(info.value)
    for word in words:
        assert word in message, message
    return message


# NIfTI ----------------------------------------------------------------------------------------
def test_handwritten_nifti_reads(tmp_path):
    """The control for the byte-level cases below: the unmodified header reads."""
    volume = read_volume(written(tmp_path, "ok.nii", nifti1()))
    assert volume.shape_ijk == (5, 4, 3)
    np.testing.assert_array_equal(volume.array.ravel(), np.arange(60))


@pytest.mark.parametrize("offset", [float("nan"), float("inf"), -float("inf"), -8.0, 352.5, 1e12])
def test_nifti_vox_offset_that_is_no_offset_is_refused(tmp_path, offset):
    # NaN gave ValueError and inf OverflowError in the old size check
    path = written(tmp_path, "bad.nii", nifti1(vox_offset=offset))
    refused(path, str(path), "vox_offset" if offset != 1e12 else "truncated")


@pytest.mark.parametrize("name", ["bad.nii", "bad.nii.gz"])
def test_nifti_with_nan_in_srow_is_refused(tmp_path, name):
    data = nifti1(sform=(1, (float("nan"), 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0)))
    path = written(tmp_path, name, gzip.compress(data) if name.endswith(".gz") else data)
    refused(path, "sform", "NaN")


def test_nifti_with_a_sheared_gantry_tilt_sform_says_so(tmp_path):
    """An uncorrected tilted-gantry CT (slice axis at 20 degrees to the slice normal), with a
    qform that ITK would fall back to: refused as sheared, not read with shifted slices."""
    tilt = np.deg2rad(20.0)
    sheared = (1, 0, 0, 0, 0, 1, np.sin(tilt), 0, 0, 0, np.cos(tilt), 0)
    message = refused(written(tmp_path, "tilt.nii", nifti1(qform=(1, (0.0,) * 6), sform=(1, sheared))),
                      "sheared", "tilted gantry")
    assert "20.0 degrees" in message
    # a rotated (not sheared) sform still reads
    c, s_ = np.cos(tilt), np.sin(tilt)
    rotated = (1, 0, 0, 0, 0, c, -s_, 0, 0, s_, c, 0)
    assert read_volume(written(tmp_path, "rotated.nii", nifti1(sform=(1, rotated)))).shape_ijk == (5, 4, 3)


def test_nifti_with_nan_quaternion_or_spacing_is_refused(tmp_path):
    refused(written(tmp_path, "q.nii", nifti1(qform=(1, (float("nan"), 0, 0, 0, 0, 0)), sform=(0, (0,) * 12))),
            "qform")
    # ITK would silently give a NaN or zero pixdim 1 mm voxels
    refused(written(tmp_path, "nan.nii", nifti1(pixdim=(float("nan"), 1, 1))), "pixdim[1]")
    refused(written(tmp_path, "zero.nii", nifti1(pixdim=(1, 1, 0.0))), "pixdim[3]")


def test_nifti_with_absurd_dims_or_datatype_is_refused(tmp_path):
    refused(written(tmp_path, "d0.nii", nifti1(dims=(5, 4, 3))[:40] + struct.pack("<h", 0)
                    + nifti1(dims=(5, 4, 3))[42:]), "dimensions")
    refused(written(tmp_path, "neg.nii", nifti1(dims=(5, -4, 3), data=b"")), "axis 2")
    refused(written(tmp_path, "huge.nii", nifti1(dims=(32767, 32767, 32767), data=b"")), "too large")
    refused(written(tmp_path, "type.nii", nifti1(datatype=3)), "datatype 3")


def test_small_nii_gz_declaring_500_mib_is_refused_by_the_voxel_budget(tmp_path, monkeypatch):
    payload = np.random.default_rng(0).integers(0, 255, 2_300_000, dtype=np.uint8).tobytes()
    data = nifti1(dims=(512, 512, 1000), data=payload)  # 500 MiB of int16 declared
    path = written(tmp_path, "bomb.nii.gz", gzip.compress(data, compresslevel=1))
    assert path.stat().st_size < 2.5e6
    monkeypatch.setenv("MEDFACE_MAX_VOXELS", "100000000")
    refused(path, "too large", "262,144,000 voxels", "MEDFACE_MAX_VOXELS")
    monkeypatch.delenv("MEDFACE_MAX_VOXELS")
    # within the default budget it is streamed, found short, and refused before ITK allocates anything
    refused(path, "truncated", "524,288,352 bytes")


def test_gzip_expansion_budget(tmp_path, monkeypatch):
    zeros = nifti1(dims=(64, 64, 64), data=bytes(64 ** 3 * 2))
    path = written(tmp_path, "zeros.nii.gz", gzip.compress(zeros))
    assert read_volume(path).array.max() == 0  # a real, highly compressible volume reads
    monkeypatch.setenv("MEDFACE_MAX_EXPANSION", "1")
    import medface.io.volume_headers as headers

    monkeypatch.setattr(headers, "_EXPANSION_SLACK", 0)
    refused(path, "too large", "MEDFACE_MAX_EXPANSION")


def test_nifti_pair_and_its_data_files(tmp_path):
    header = bytearray(nifti1(vox_offset=0.0)[:348])
    header[344:348] = b"ni1\0"
    hdr = written(tmp_path, "pair.hdr", bytes(header))
    img = written(tmp_path, "pair.img", VOXELS)
    assert read_volume(hdr).shape_ijk == (5, 4, 3)
    assert data_files(hdr) == [hdr, img]
    img.write_bytes(VOXELS[:50])
    refused(hdr, "truncated")
    img.unlink()
    refused(hdr, "not found")


# NRRD -------------------------------------------------------------------------------------
def test_gzip_nrrd_declaring_2_gib_is_refused_before_any_allocation(tmp_path):
    fields = "type: uint8\ndimension: 3\nsizes: 2048 1024 1024\nencoding: gzip\n"
    refused(written(tmp_path, "big.nrrd", nrrd(fields, gzip.compress(bytes(1000)))), "too large", "voxels")
    fields = "type: short\ndimension: 3\nsizes: 1024 1024 512\nencoding: gzip\n"  # 1 GiB, within the voxel budget
    refused(written(tmp_path, "bomb.nrrd", nrrd(fields, gzip.compress(bytes(1000)))), "too large", "expansion")


@pytest.mark.parametrize("fields, words", [
    ("type: uint8\ndimension: 3\nsizes: 2 2\nencoding: raw\n", ["2 values for sizes"]),
    ("type: uint8\ndimension: 1e308\nsizes: 2 2 2\nencoding: raw\n", ["dimension"]),
    ("type: quaternion\ndimension: 3\nsizes: 2 2 2\nencoding: raw\n", ["type"]),
    ("type: uint8\ndimension: 3\nsizes: 2 2 2\nencoding: lzma\n", ["encoding"]),
    ("type: uint8\ndimension: 3\nsizes: 2 2 2\nspace directions: (nan,0,0) (0,1,0) (0,0,1)\nencoding: raw\n",
     ["space directions", "finite"]),
    ("type: uint8\ndimension: 3\nsizes: 2 2 2\nspace origin: (0,inf,0)\nencoding: raw\n", ["space origin"]),
    ("type: uint8\ndimension: 3\nsizes: 4 4 4\nencoding: raw\n", ["truncated", "64 bytes"]),
    ("type: uint8\ndimension: 3\nsizes: 2 2 2\nspacings: 1e30 1 1\nencoding: raw\n", ["millimetres"]),
    ("type: uint8\ndimension: 3\nsizes: 2 2 2\nsizes: 9999 9999 9999\nencoding: raw\n", ["twice"]),
    ("type: uint8\ndimension: 3\nsizes: 2 2 2\nspace directions: (1,0,0) (1,1,0) (0,0,1)\nencoding: raw\n",
     ["not a rotation"]),
    ("type: uint8\ndimension: 3\nsizes: 2 2 2\nspace directions: (1e308,0,0) (0,1,0) (0,0,1)\nencoding: raw\n",
     ["millimetres"]),  # ITK made it a 1 mm spacing
])
def test_malformed_nrrd_headers_are_refused(tmp_path, fields, words):
    refused(written(tmp_path, "bad.nrrd", nrrd(fields, bytes(8))), *words)


def test_detached_nrrd_and_its_data_files(tmp_path):
    (tmp_path / "slab.raw").write_bytes(bytes(range(8)))
    header = written(tmp_path, "v.nhdr", nrrd("type: uint8\ndimension: 3\nsizes: 2 2 2\nencoding: raw\n"
                                             "data file: slab.raw\n"))
    assert read_volume(header).array.ravel().tolist() == list(range(8))
    assert data_files(header) == [header, tmp_path / "slab.raw"]
    (tmp_path / "s1.raw").write_bytes(bytes(4))
    (tmp_path / "s2.raw").write_bytes(bytes(4))
    listed = written(tmp_path, "list.nhdr", nrrd("type: uint8\ndimension: 3\nsizes: 2 2 2\nencoding: raw\n"
                                                 "data file: LIST 2\ns1.raw\ns2.raw\n"))
    assert data_files(listed) == [listed, tmp_path / "s1.raw", tmp_path / "s2.raw"]
    os.mkdir(tmp_path / "folder.raw")
    refused(written(tmp_path, "dir.nhdr", nrrd("type: uint8\ndimension: 3\nsizes: 2 2 2\nencoding: raw\n"
                                               "data file: folder.raw\n")), "folder")


# MetaImage --------------------------------------------------------------------------------
def test_metaimage_with_ndims_1e308_does_not_kill_the_process(tmp_path):
    """It ended in a segmentation fault inside ITK. The pre-check alone (isolation off) stops it."""
    path = written(tmp_path, "ndims.mha", metaimage(ndims="1e308") + VOXELS)
    script = ("import sys\nfrom medface.errors import InputError\nfrom medface.io import read_volume\n"
              "try:\n    read_volume(sys.argv[1])\nexcept InputError as exc:\n    print('refused:', exc)\n")
    env = {**os.environ, "MEDFACE_ISOLATE_READERS": "0"}
    run = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, env=env,
                         timeout=120)
    assert run.returncode == 0, (run.returncode, run.stderr[-2000:])
    assert "refused:" in run.stdout and "NDims" in run.stdout


@pytest.mark.parametrize("kwargs, words", [
    (dict(dim_size="5 4"), ["2 values for DimSize"]),
    (dict(dim_size="5 4 -3"), ["DimSize"]),
    (dict(dim_size="50000 40000 30000"), ["too large"]),
    (dict(matrix="1 0 0 0 nan 0 0 0 1"), ["TransformMatrix", "finite"]),
    (dict(matrix="2 0 0 0 0.5 0 0 0 1"), ["not a rotation"]),
    (dict(matrix="1 0 0 0 1 0 0 1e308 1"), ["not a rotation"]),  # ITK hung on it
    (dict(spacing="1e30 1 1"), ["millimetres"]),
    (dict(extra="ElementNumberOfChannels = 1e19\n"), ["ElementNumberOfChannels"]),
    (dict(extra="NDims = 1e308\n"), ["NDims", "twice"]),  # MetaIO might read the other one
])
def test_malformed_metaimage_headers_are_refused(tmp_path, kwargs, words):
    refused(written(tmp_path, "bad.mha", metaimage(**kwargs) + VOXELS), *words)


def test_metaimage_data_files_truncation_and_slices(tmp_path):
    refused(written(tmp_path, "cut.mha", metaimage() + VOXELS[:-10]), "truncated", "120 bytes")
    for k in range(3):
        (tmp_path / f"slice.{k + 1}").write_bytes(VOXELS[40 * k:40 * (k + 1)])
    header = written(tmp_path, "slices.mhd", metaimage(data_file="slice.%d 1 3 1"))
    volume = read_volume(header)
    np.testing.assert_array_equal(volume.array.ravel(), np.arange(60))
    assert data_files(header) == [header] + [tmp_path / f"slice.{k}" for k in (1, 2, 3)]
    (tmp_path / "slice.3").unlink()
    refused(header, "not found")
    mhd = written(tmp_path, "one.mhd", metaimage(data_file="one.raw"))
    (tmp_path / "one.raw").write_bytes(VOXELS)
    assert data_files(mhd) == [mhd, tmp_path / "one.raw"]


def test_data_files_of_single_files_and_folders(tmp_path, oblique_volume):
    nii = write_volume(oblique_volume, tmp_path / "v.nii.gz")
    assert data_files(nii) == [nii]
    assert data_files(tmp_path) == [tmp_path]
    broken = written(tmp_path, "broken.mhd", b"NDims = 3\nObjectType = Image\nElementDataFile = gone.raw\n")
    assert data_files(broken) == [broken]  # never raises: it only serves hashing


def test_real_headsq_lists_every_slice(shared_data):
    files = data_files(shared_data / "headsq" / "headsq.mhd")
    assert len(files) == 94 and files[40].name == "quarter.40"


# geometry of the Volume ---------------------------------------------------------------------
@pytest.fixture
def oblique_volume() -> Volume:
    c, s = np.cos(0.3), np.sin(0.3)
    return Volume(np.random.default_rng(3).normal(size=(4, 5, 6)), spacing=(0.8, 0.9, 2.0),
                  origin=(-10.0, 20.0, 5.5), direction=[[c, -s, 0], [s, c, 0], [0, 0, 1]])


def test_direction_that_is_not_a_rotation_is_refused():
    with pytest.raises(InputError, match="not a rotation"):
        Volume(np.zeros((2, 2, 2)), direction=np.diag([2.0, 0.5, 1.0]))
    with pytest.raises(InputError, match="NaN"):
        Volume(np.zeros((2, 2, 2)), direction=[[np.nan, 0, 0], [0, 1, 0], [0, 0, 1]])


def test_rounded_direction_is_reorthonormalised(oblique_volume):
    rounded = np.round(oblique_volume.direction, 5)  # as a DICOM or float32 header may store it
    volume = Volume(np.zeros((2, 2, 2)), direction=rounded)
    np.testing.assert_allclose(volume.direction.T @ volume.direction, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(volume.direction, oblique_volume.direction, atol=1e-5)
    exact = Volume(np.zeros((2, 2, 2)), direction=oblique_volume.direction)
    assert np.array_equal(exact.direction, oblique_volume.direction)  # an orthonormal one is kept as it is


@pytest.mark.parametrize("spacing, words", [
    ((1e30, 1, 1), "millimetres"), ((0.0001, 1, 1), "millimetres"), ((1, np.nan, 1), "positive"),
    ((1, 0, 1), "positive"),
])
def test_implausible_spacing_is_refused(spacing, words):
    with pytest.raises(InputError, match=words):
        Volume(np.zeros((2, 2, 2)), spacing=spacing)
    Volume(np.zeros((2, 2, 2)), spacing=(0.05, 10.0, 50.0))  # micro-CT to thick slices: fine


def test_origin_and_values_must_be_finite_and_real():
    with pytest.raises(InputError, match="origin"):
        Volume(np.zeros((2, 2, 2)), origin=(0, np.inf, 0))
    with pytest.raises(InputError, match="millimetres"):
        Volume(np.zeros((2, 2, 2)), origin=(0, -3e38, 0))  # a NIfTI qoffset of 3e38 was accepted
    with pytest.raises(InputError, match="complex"):
        Volume(np.zeros((2, 2, 2), dtype=np.complex64))


# files that are not files ---------------------------------------------------------------------
@needs_fifo
def test_named_pipe_is_refused_without_blocking(tmp_path):
    pipe = tmp_path / "ct.nii.gz"
    os.mkfifo(pipe)
    refused(pipe, "named pipe")


@needs_fifo
def test_dicom_folder_skips_pipes_and_needs_dicom(tmp_path, oblique_volume):
    folder = tmp_path / "ct"
    write_dicom_series(oblique_volume, folder)
    os.mkfifo(folder / "IMG9999.dcm")
    (folder / "loop.dcm").symlink_to(folder / "loop.dcm")
    assert read_volume(folder).shape_ijk == (6, 5, 4)
    empty = tmp_path / "pipes"
    empty.mkdir()
    os.mkfifo(empty / "IMG0001.dcm")
    refused(empty, "without DICOM")


def test_symlink_loop_is_refused(tmp_path):
    loop = tmp_path / "loop.nrrd"
    loop.symlink_to(loop)
    refused(loop, str(loop))


def test_folder_named_like_a_volume_is_refused(tmp_path):
    folder = tmp_path / "ct.nii.gz"
    folder.mkdir()
    (folder / "notes.txt").write_text("no image here\n", encoding="utf-8")
    refused(folder, "without DICOM")


# the reading child ------------------------------------------------------------------------
def test_a_reader_crash_becomes_an_input_error(tmp_path, monkeypatch, oblique_volume):
    path = write_volume(oblique_volume, tmp_path / "v.nrrd")

    def crash(*args):
        import faulthandler

        faulthandler.disable()  # no traceback dump from the child
        os.kill(os.getpid(), signal.SIGSEGV)

    monkeypatch.setattr(volumes, "_read_image_file", crash)
    refused(path, "crash", "SIGSEGV")


def test_large_arrays_come_back_from_the_child_intact(tmp_path, monkeypatch, oblique_volume):
    monkeypatch.setattr(volumes, "_SPILL_BYTES", 0)  # every array through the temporary file
    back = read_volume(write_volume(oblique_volume, tmp_path / "v.mha"))
    np.testing.assert_array_equal(back.array, oblique_volume.array)


# DICOM privacy ----------------------------------------------------------------------------
PATIENT = {
    "PatientName": "DOE^JANE^Q", "PatientID": "MRN-7731945", "PatientBirthDate": "19610314",
    "AccessionNumber": "ACC-55219", "InstitutionName": "St Elsewhere Clinic",
    "ReferringPhysicianName": "HOUSE^GREGORY", "StudyID": "STUDY-4242", "StudyDate": "20230715",
    "SeriesDescription": "Head Jane Doe pre-op", "OtherPatientIDs": "OLD-99812",
}


def test_dicom_patient_tags_stay_out_of_the_volume_and_of_written_series(tmp_path, oblique_volume):
    import pydicom

    source = tmp_path / "source"
    for file in write_dicom_series(oblique_volume, source):
        ds = pydicom.dcmread(file)
        for key, value in PATIENT.items():
            setattr(ds, key, value)
        ds.save_as(file)
    volume = read_volume(source)
    text = repr(volume.metadata) + repr(volume.describe())
    assert not [v for v in PATIENT.values() if v in text], volume.metadata
    assert set(volume.metadata) == {"modality", "format", "files"}
    out = write_dicom_series(volume, tmp_path / "out")
    for file in out:
        data = file.read_bytes()
        assert not [v for v in PATIENT.values() if v.encode() in data], file
        ds = pydicom.dcmread(file)
        assert ds.PatientIdentityRemoved == "YES"
        assert ds.DeidentificationMethodCodeSequence[0].CodeValue == "113100"
        assert "Basic Profile" in str(ds.DeidentificationMethod)
    back = read_volume(tmp_path / "out")
    np.testing.assert_allclose(back.spacing, oblique_volume.spacing, atol=1e-9)
    np.testing.assert_allclose(back.origin, oblique_volume.origin, atol=1e-6)
    np.testing.assert_allclose(back.direction, oblique_volume.direction, atol=1e-9)


def test_dicom_series_with_a_truncated_end_slice_is_refused(tmp_path, oblique_volume):
    """GDCM leaves a truncated file out of the series: at either end the volume silently lost a slice."""
    files = write_dicom_series(oblique_volume, tmp_path / "ct")
    files[0].write_bytes(files[0].read_bytes()[:600])
    refused(tmp_path / "ct", files[0].name, "truncated")
