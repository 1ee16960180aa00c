"""Read and write 3D images (CT, MR, masks) with SimpleITK, keeping their geometry.

Origin, spacing and direction go through unchanged (ITK's LPS convention is medface's). Only a
DICOM CT series is known to be in Hounsfield units; every other file gets ``units=""``.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..data.volume import Volume
from ..errors import InputError, OutputError, ParameterError
from ._files import atomic_output, output_suffix, staging_folder
from .isolated import isolation_enabled, mapped_bytes, run_isolated
from .limits import check_count, require_regular_file
from .sniff import describe, is_dicom_file, require_category
from .volume_headers import check_header, data_files  # noqa: F401 - data_files is re-exported

VOLUME_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".mha", ".mhd")

_IMAGE_IO = {"nifti": "NiftiImageIO", "nrrd": "NrrdImageIO", "metaimage": "MetaImageIO", "dicom": "GDCMImageIO"}

_SOP_CLASS = {  # DICOM storage classes by modality; anything else is written as Secondary Capture
    "CT": "1.2.840.10008.5.1.4.1.1.2",
    "MR": "1.2.840.10008.5.1.4.1.1.4",
}
_SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"

_KEPT_DICOM_TAGS = {  # tag -> metadata key: only what the units need. No patient name, id, birth date,
    "0008|0060": "modality",  # accession, institution, physician, study id, dates, UIDs or descriptions
}


# reading ----------------------------------------------------------------------------------
def read_volume(path, *, series_uid: str | None = None) -> Volume:
    """Read a 3D image: a DICOM series folder or file, NIfTI (.nii/.nii.gz), NRRD or MetaImage.

    The format is recognised from the content. A folder holding several DICOM series needs
    ``series_uid`` to pick one. ``units`` is ``"HU"`` for DICOM CT (the rescale slope and
    intercept are applied) and ``""`` otherwise. Raises :class:`InputError` for missing,
    truncated, corrupt or non-volume files, and for any file that is not a regular file.

    The header is checked first (declared sizes against :func:`medface.io.limits.budget`,
    finite geometry, data the file really holds); ITK then reads the file in a child process,
    so a file that would crash it gives an InputError. DICOM tags that identify the patient
    are not copied: ``metadata`` holds the format, the modality and the number of files.
    """
    path = _volume_input(path)
    kind = require_category(path, "volume")
    if series_uid is not None and kind != "dicom-folder":
        raise ParameterError(f"series_uid applies to a DICOM series folder, but {path} is {describe(kind)}",
                             parameter="series_uid")
    if kind == "dicom-folder":
        return _read_dicom_folder(path, series_uid)
    if kind == "dicom":
        return _isolated(_read_dicom_file, path, path=path, what="DICOM file", nbytes=4 * path.stat().st_size)
    declared = check_header(path, kind)
    nbytes = declared.data_bytes if declared is not None else 4 * path.stat().st_size
    return _isolated(_read_image_file, path, kind, path=path, what=describe(kind).split(" ", 1)[1], nbytes=nbytes)


def _volume_input(path) -> Path:
    """``path`` if it is a folder or a regular file; InputError for pipes, devices, link loops."""
    p = Path(path)
    try:
        mode = os.stat(p).st_mode
    except FileNotFoundError:
        raise InputError("does not exist", path=p, hint="check the path and the current folder") from None
    except OSError:
        mode = 0  # a link loop, a name too long: require_regular_file says which
    return p if stat.S_ISDIR(mode) else require_regular_file(p, "volume")


def _read_image_file(path: Path, kind: str) -> Volume:
    """NIfTI, NRRD or MetaImage through SimpleITK (in the reading child)."""
    with _itk_readable_name(path, kind) as filename:
        image, _ = _execute_reader(path, kind, filename)
    return Volume.from_sitk(image, source=str(path), metadata={"format": kind})


# reading in a child process ----------------------------------------------------------------
class _Spilled:
    """A voxel array the reading child left in a file, too large to pickle through a pipe."""

    def __init__(self, file: str):
        self.file = file


def _isolated(func, *args, path: Path, what: str, nbytes: int):
    """``func(*args)`` (returning a Volume, or a tuple led by one) through :func:`run_isolated`:
    a crash, hang or allocation failure of ITK becomes an InputError naming ``path``."""
    if not isolation_enabled():
        return func(*args)
    with tempfile.TemporaryDirectory(prefix="medface-read-") as tmp:
        answer = run_isolated(_spill_call, func, args, tmp, path=path, what=what, timeout_s=_read_timeout(nbytes),
                              memory_bytes=_memory_cap(nbytes))
        volume = answer[0] if isinstance(answer, tuple) else answer
        if isinstance(volume.array, _Spilled):
            volume.array = np.load(volume.array.file, allow_pickle=False)
        return answer


def _spill_call(func, args, folder: str):  # pragma: no cover - runs in the child
    answer = func(*args)
    volume = answer[0] if isinstance(answer, tuple) else answer
    if volume.array.nbytes > _SPILL_BYTES:
        file = os.path.join(folder, "voxels.npy")
        np.save(file, volume.array, allow_pickle=False)
        volume.array = _Spilled(file)
    return answer


_SPILL_BYTES = 32 << 20  # larger arrays come back from the child through a temporary .npy file


def _read_timeout(nbytes: int) -> float:
    """Seconds a read may take: half a minute, plus one per 5 MB of declared voxel data."""
    return min(30.0 + nbytes / 5e6, 3600.0)


def _memory_cap(nbytes: int) -> int | None:
    """Address space for the reading child: what the process maps now, four times the declared
    voxel data (decoding, rescaling, copying) and 4 GiB for the library's own needs."""
    mapped = mapped_bytes()
    return None if mapped is None else mapped + 4 * int(nbytes) + (4 << 30)


def _execute_reader(path: Path, kind: str, filename: str):
    """(image, reader) from SimpleITK with the ImageIO of ``kind``; errors become InputError."""
    import SimpleITK as sitk

    reader = sitk.ImageFileReader()
    reader.SetImageIO(_IMAGE_IO[kind])
    reader.SetFileName(filename)
    reader.LoadPrivateTagsOff()
    try:
        return reader.Execute(), reader
    except RuntimeError as exc:
        raise InputError(f"cannot be read as {describe(kind)}: {itk_message(exc)}", path=path,
                         hint="the file may be truncated or corrupt") from exc


@contextmanager
def _itk_readable_name(path: Path, kind: str) -> Iterator[str]:
    """A file name ITK accepts: its NIfTI reader insists on a NIfTI extension, so a misnamed
    NIfTI file is offered through a correctly named temporary link."""
    name = path.name.lower()
    if kind != "nifti" or name.endswith((".nii", ".nii.gz", ".hdr", ".img", ".hdr.gz", ".img.gz")):
        yield str(path)
        return
    with open(path, "rb") as fh:
        suffix = ".nii.gz" if fh.read(2) == b"\x1f\x8b" else ".nii"
    with tempfile.TemporaryDirectory(prefix="medface-nifti-") as tmp:
        link = Path(tmp) / ("volume" + suffix)
        link.symlink_to(path.resolve())
        yield str(link)


# DICOM --------------------------------------------------------------------------------------
def _image_information(path: Path, filename: str, n_files: int) -> None:
    """Refuse a DICOM file whose declared rows x columns x frames (x files) exceed the voxel
    budget, before GDCM allocates them."""
    import SimpleITK as sitk

    reader = sitk.ImageFileReader()
    reader.SetImageIO("GDCMImageIO")
    reader.SetFileName(filename)
    try:
        reader.ReadImageInformation()
    except RuntimeError as exc:
        raise InputError(f"cannot be read as a DICOM file: {itk_message(exc)}", path=path,
                         hint="the file may be truncated or corrupt") from exc
    size = [int(v) for v in reader.GetSize()] + [reader.GetNumberOfComponents(), n_files]
    voxels = 1
    for v in size:
        voxels *= v
    check_count(voxels, "max_voxels", "voxels", path)


def _read_dicom_file(path: Path) -> Volume:
    import SimpleITK as sitk

    _image_information(path, str(path), 1)
    image, reader = _execute_reader(path, "dicom", str(path))
    if image.GetDimension() == 2:
        image = sitk.JoinSeries([image])
    tags = {tag: reader.GetMetaData(tag).strip() for tag in _KEPT_DICOM_TAGS if reader.HasMetaDataKey(tag)}
    return _dicom_volume(image, tags, path, n_files=1)


def _read_dicom_folder(folder: Path, series_uid: str | None) -> Volume:
    with _regular_files_view(folder) as view:
        nbytes = 4 * sum(_size(f) for f in view.iterdir())
        volume, positions, cosines = _isolated(_read_dicom_series, view, folder, series_uid, path=folder,
                                               what="DICOM series", nbytes=nbytes)
    _check_slice_geometry(positions, cosines, folder)
    return volume


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


@contextmanager
def _regular_files_view(folder: Path) -> Iterator[Path]:
    """A temporary folder of links to the regular files of ``folder``: GDCM then never opens a
    named pipe, a device or a link loop that sits in the folder."""
    try:
        entries = sorted(folder.iterdir())
    except OSError as exc:
        raise InputError(f"cannot list the folder: {exc.strerror or exc}", path=folder) from None
    regular = []
    for entry in entries:
        try:
            if stat.S_ISREG(os.stat(entry).st_mode):
                regular.append(entry)
        except OSError:
            continue
    if not regular:
        raise InputError("holds no regular files to read as DICOM", path=folder,
                         hint="pass the folder that holds the files of one DICOM series")
    with tempfile.TemporaryDirectory(prefix="medface-dicom-") as tmp:
        view = Path(tmp)
        try:
            for entry in regular:
                (view / entry.name).symlink_to(entry.resolve())
        except OSError:  # no symbolic links here (Windows without the privilege): read the folder itself
            yield folder
            return
        yield view


def _read_dicom_series(view: Path, folder: Path, series_uid: str | None):
    """(Volume, per-slice positions, orientation) of one series (in the reading child)."""
    import SimpleITK as sitk

    series = _series_in(view, folder)
    if series_uid is None:
        if len(series) > 1:
            listing = "; ".join(f"{uid} ({len(files)} files)" for uid, files in series.items())
            raise InputError(
                f"{folder} holds {len(series)} DICOM series: {listing}", path=folder,
                hint="pass the folder of a single series, or choose one with series_uid=")
        series_uid = next(iter(series))
    elif series_uid not in series:
        raise InputError(f"{folder} holds no DICOM series with UID {series_uid}; it holds: {', '.join(series)}",
                         path=folder)
    files = series[series_uid]
    _check_left_out_files(view, folder, series, series_uid)
    _image_information(folder, files[0], len(files))
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(files)
    reader.MetaDataDictionaryArrayUpdateOn()
    reader.LoadPrivateTagsOff()
    warnings_shown = sitk.ProcessObject.GetGlobalWarningDisplay()
    sitk.ProcessObject.SetGlobalWarningDisplay(False)  # _check_slice_geometry reports uneven slices itself
    try:
        image = reader.Execute()
    except RuntimeError as exc:
        raise InputError(f"the DICOM series {series_uid} cannot be read: {itk_message(exc)}", path=folder,
                         hint="a file of the series may be truncated or corrupt") from exc
    finally:
        sitk.ProcessObject.SetGlobalWarningDisplay(warnings_shown)
    tags = {tag: reader.GetMetaData(0, tag).strip() for tag in _KEPT_DICOM_TAGS if reader.HasMetaDataKey(0, tag)}
    positions = [reader.GetMetaData(k, "0020|0032") if reader.HasMetaDataKey(k, "0020|0032") else ""
                 for k in range(len(files))]
    cosines = reader.GetMetaData(0, "0020|0037") if reader.HasMetaDataKey(0, "0020|0037") else ""
    return _dicom_volume(image, tags, folder, n_files=len(files)), positions, cosines


def _check_left_out_files(view: Path, folder: Path, series: dict, series_uid: str) -> None:
    """Refuse a series one of whose files GDCM left out (truncated or corrupt): it would silently
    lose a slice at either end. A DICOM file of another series or of another kind (DICOMDIR,
    a report) is no concern."""
    used = {Path(f).name for files in series.values() for f in files}
    left_out = [f for f in sorted(view.iterdir())
                if f.name not in used and (is_dicom_file(f) or f.suffix.lower() == ".dcm")]
    if not left_out:
        return
    sop_class = _dicom_header(Path(series[series_uid][0]))[1]
    for file in left_out[:64]:
        uid, kind = _dicom_header(file)
        if uid is None or uid == series_uid or (not uid and kind == sop_class):
            raise InputError(f"the DICOM file {file.name} in this folder cannot be read as part of the series "
                             "(it is truncated or corrupt), so the volume would silently lack its slice",
                             path=folder, hint="copy the series again, or remove that file if it does not belong to it")


def _dicom_header(file: Path) -> tuple[str | None, str]:
    """(SeriesInstanceUID or "", MediaStorageSOPClassUID) by pydicom; (None, "") if unparseable."""
    import pydicom

    try:
        ds = pydicom.dcmread(file, stop_before_pixels=True)
        return str(ds.get("SeriesInstanceUID", "")), str(ds.file_meta.get("MediaStorageSOPClassUID", ""))
    except Exception:  # noqa: BLE001 - pydicom raises many kinds on a broken file
        return None, ""


def _series_in(view: Path, folder: Path) -> dict[str, tuple[str, ...]]:
    """Series UID -> its files, sorted along the slice normal (GDCM's order)."""
    import SimpleITK as sitk

    try:
        uids = sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(view))
        series = {uid: sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(view), uid) for uid in uids}
    except RuntimeError as exc:
        raise InputError(f"the DICOM files cannot be scanned: {itk_message(exc)}", path=folder) from exc
    if not series:
        raise InputError("holds DICOM files but no image series GDCM can read", path=folder,
                         hint="the files may hold no pixel data (reports, structured sets) or be corrupt")
    return series


def _check_slice_geometry(positions: list[str], cosines: str, folder: Path) -> None:
    """Refuse series with missing slices, uneven spacing or sheared slices (gantry tilt).

    A Volume is a regular grid; such a series would silently get a wrong geometry.
    """
    n_slices = len(positions)
    if n_slices < 3:
        return
    try:
        positions = np.array([[float(v) for v in text.split("\\")] for text in positions])
        cosines = np.array([float(v) for v in cosines.split("\\")])
        normal = np.cross(cosines[:3], cosines[3:])
        offsets = positions - positions[0]
        along = offsets @ normal
    except (ValueError, IndexError):
        return  # no per-slice positions to check
    if not (np.all(np.isfinite(along)) and np.all(np.isfinite(offsets))):
        raise InputError("the slice positions or orientation of this DICOM series are not finite numbers",
                         path=folder, hint="the files are corrupt; export the series again")
    steps = np.diff(along)
    median = float(np.median(steps))
    tolerance = max(1e-3, 0.01 * abs(median))
    if median == 0 or np.any(np.abs(steps - median) > tolerance):
        raise InputError(
            f"the slices of this DICOM series are not evenly spaced (steps from {steps.min():.4g} to "
            f"{steps.max():.4g} mm): slices are missing or duplicated", path=folder,
            hint="check the export is complete, or resample the series first")
    lateral = np.linalg.norm(offsets - np.outer(along, normal), axis=1).max()
    if lateral > max(1e-3, 0.01 * abs(along[-1])):
        raise InputError(
            f"the slices of this DICOM series are sheared (they drift {lateral:.3g} mm sideways, as with a "
            "tilted gantry); medface needs a regular grid", path=folder,
            hint="resample the series onto a regular grid first")


def _dicom_volume(image, tags: dict[str, str], source: Path, n_files: int) -> Volume:
    metadata = {key: tags[tag] for tag, key in _KEPT_DICOM_TAGS.items() if tags.get(tag)}
    metadata.update(format="dicom", files=n_files)
    units = "HU" if metadata.get("modality", "").upper() == "CT" else ""
    return Volume.from_sitk(image, units=units, source=str(source), metadata=metadata)


def itk_message(exc: BaseException) -> str:
    """The informative part of a SimpleITK exception, on one short line."""
    text = str(exc)
    if "ITK ERROR:" in text:
        text = text.split("ITK ERROR:", 1)[1]
    text = re.sub(r"^\s*\w+\(0x[0-9a-fA-F]+\):\s*", "", text)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    short = lines[0] if len(lines) == 1 or lines[-1] == lines[0] else f"{lines[0]} ... {lines[-1]}"
    return short[:300]


# writing ----------------------------------------------------------------------------------
def write_volume(volume: Volume, path, *, compress: bool = True) -> Path:
    """Write ``volume`` as NIfTI (.nii, .nii.gz), NRRD (.nrrd) or MetaImage (.mha, .mhd).

    The format follows the extension. ``compress`` gzips NRRD and MetaImage voxel data
    (.nii.gz is always compressed, .nii never). NIfTI stores geometry in 32-bit floats; NRRD
    and MetaImage keep it in full double precision. The file appears only once complete.
    """
    import SimpleITK as sitk

    path = Path(path)
    if path.name.lower().endswith(".dcm"):
        raise OutputError("DICOM is written as a series folder, not a single file", path=path,
                          hint="use medface.io.write_dicom_series(volume, folder)")
    output_suffix(path, VOLUME_SUFFIXES, "volume")
    image = _sitk_image(volume)
    with atomic_output(path, "volume") as tmp:
        sitk.WriteImage(image, str(tmp), useCompression=compress)
    return path


def _sitk_image(volume: Volume):
    array = volume.array
    if array.dtype == bool:
        array = array.astype(np.uint8)
    elif array.dtype == np.float16:
        array = array.astype(np.float32)
    return volume.with_array(array).to_sitk() if array is not volume.array else volume.to_sitk()


def uid_from_seed(seed: str) -> str:
    """A DICOM UID derived from ``seed``: "2.25." and 128 bits of its sha256 as a decimal.

    The 2.25 root is for UUID-derived UIDs; 128 bits keep the UID under DICOM's 64 characters.
    """
    return "2.25." + str(int(hashlib.sha256(seed.encode("utf-8")).hexdigest()[:32], 16))


def write_dicom_series(
    volume: Volume,
    folder,
    *,
    modality: str = "CT",
    patient_name: str = "SYNTHETIC^PHANTOM",
    patient_id: str = "SYNTHETIC",
    series_description: str = "medface synthetic volume",
    series_number: int = 1,
    study_uid: str | None = None,
    series_uid: str | None = None,
    uid_seed: str | None = None,
    overwrite: bool = False,
) -> list[Path]:
    """Write ``volume`` as a DICOM series, one file per slice (``IMG0001.dcm`` ...), in ``folder``.

    Pixels are int16 with a rescale slope and intercept chosen so the values come back: integer
    values in the int16 range are stored exactly (slope 1, intercept 0); others are scaled to
    the full int16 range. For ``modality="CT"`` the values should be in HU. Each file carries
    the slice's position and orientation, spacing and thickness, and UIDs derived from
    ``uid_seed`` (by default a hash of the voxels and geometry), with dummy study date and time,
    so the same input gives byte-identical files. ``folder`` must be new or empty unless
    ``overwrite`` is true, in which case its DICOM files are replaced. Returns the file paths.

    The files are de-identified by the DICOM PS3.15 Annex E basic profile (see
    :mod:`medface.io.deidentify` for what it does to each attribute written): ``patient_name``
    and ``patient_id`` are pseudonyms written as dummy values, never a person's name or record
    number; the geometry (positions, orientation, spacing) is kept exactly.
    """
    import SimpleITK as sitk

    from .deidentify import deidentify_file

    folder = Path(folder)
    _check_series_folder(folder, overwrite)
    stored, slope, intercept = _int16_rescale(volume.array, folder)
    seed = uid_seed if uid_seed is not None else _volume_digest(volume)
    study_uid = _checked_uid(study_uid, "study_uid") or uid_from_seed(seed + "/study")
    series_uid = _checked_uid(series_uid, "series_uid") or uid_from_seed(seed + "/series")
    shared = _series_tags(volume, modality.upper(), patient_name=patient_name, patient_id=patient_id,
                          description=series_description, series_number=series_number, study_uid=study_uid,
                          series_uid=series_uid, frame_uid=uid_from_seed(seed + "/frame-of-reference"), slope=slope,
                          intercept=intercept)
    image = sitk.GetImageFromArray(stored)
    image.SetSpacing(volume.spacing)
    image.SetOrigin(volume.origin)
    image.SetDirection(tuple(volume.direction.ravel()))
    n = stored.shape[0]
    names = [f"IMG{k + 1:0{max(4, len(str(n)))}d}.dcm" for k in range(n)]
    normal = volume.direction[:, 2]
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    with staging_folder(folder, "DICOM series") as tmp:
        for k, name in enumerate(names):
            position = np.array(image.TransformIndexToPhysicalPoint((0, 0, k)))
            slice_ = image[:, :, k]
            for tag, value in shared.items():
                slice_.SetMetaData(tag, value)
            slice_.SetMetaData("0008|0018", uid_from_seed(f"{seed}/instance/{k + 1}"))
            slice_.SetMetaData("0020|0013", str(k + 1))
            slice_.SetMetaData("0020|0032", "\\".join(_ds(v) for v in position))
            slice_.SetMetaData("0020|1041", _ds(float(position @ normal)))
            writer.SetFileName(str(tmp / name))
            writer.Execute(slice_)
            deidentify_file(tmp / name, patient_name=patient_name, patient_id=patient_id)
        folder.mkdir(parents=True, exist_ok=True)
        if overwrite:
            for old in folder.iterdir():
                if old.is_file() and is_dicom_file(old):
                    old.unlink()
        for name in names:
            os.replace(tmp / name, folder / name)
    return [folder / name for name in names]


def _check_series_folder(folder: Path, overwrite: bool) -> None:
    if folder.exists() and not folder.is_dir():
        raise OutputError("exists and is not a folder", path=folder, hint="DICOM series are written into a folder")
    if folder.is_dir() and any(folder.iterdir()) and not overwrite:
        raise OutputError("is not empty; writing a series there could mix it with other files", path=folder,
                          hint="choose a new or empty folder, or pass overwrite=True to replace its DICOM files")


def _checked_uid(uid: str | None, name: str) -> str | None:
    if uid is None:
        return None
    if len(uid) > 64 or not re.fullmatch(r"[0-9]+(\.[0-9]+)*", uid):
        raise ParameterError(f"'{uid}' is not a DICOM UID (digits and dots, at most 64 characters)", parameter=name)
    return uid


def _volume_digest(volume: Volume) -> str:
    h = hashlib.sha256()
    array = np.ascontiguousarray(volume.array)
    h.update(f"{array.dtype.str}{array.shape}{volume.spacing}{volume.origin}".encode())
    h.update(np.ascontiguousarray(volume.direction, dtype=float).tobytes())
    h.update(array.tobytes())
    return h.hexdigest()


def _int16_rescale(array: np.ndarray, folder: Path) -> tuple[np.ndarray, float, float]:
    """Voxel values for the DICOM writer and the rescale (slope, intercept) to store them with.

    Integer values that fit int16 go as int16 with slope 1, intercept 0 (exact). Anything else
    is snapped to the grid ``intercept + slope * n`` (n in int16) and handed over as float64;
    GDCM then stores n. GDCM accepts only an integer intercept.
    """
    a = np.asarray(array, dtype=np.float64)
    if not np.all(np.isfinite(a)):
        raise OutputError("the volume has NaN or infinite voxels, which DICOM cannot store", path=folder)
    lo, hi = float(a.min()), float(a.max())
    if lo >= -32768 and hi <= 32767 and np.array_equal(a, np.round(a)):
        return a.astype(np.int16), 1.0, 0.0
    intercept = float(round((hi + lo) / 2))
    half_range = max(hi - intercept, intercept - lo)
    slope = float(_ds(half_range / 32000)) if half_range > 0 else 1.0
    stored = np.clip(np.round((a - intercept) / slope), -32767, 32767)
    return stored * slope + intercept, slope, intercept


def _series_tags(volume: Volume, modality: str, *, patient_name: str, patient_id: str, description: str,
                 series_number: int, study_uid: str, series_uid: str, frame_uid: str, slope: float,
                 intercept: float) -> dict[str, str]:
    """The DICOM tags every slice of a written series shares (tag "gggg|eeee" -> value)."""
    d = volume.direction
    sx, sy, sz = volume.spacing
    return {
        "0008|0008": "DERIVED\\SECONDARY",
        "0008|0016": _SOP_CLASS.get(modality, _SECONDARY_CAPTURE),
        "0008|0020": "",  # study date and time left empty on purpose: output must not depend on the clock
        "0008|0030": "",
        "0008|0060": modality,
        "0008|103e": description,
        "0010|0010": patient_name,
        "0010|0020": patient_id,
        "0018|0050": _ds(sz),
        "0018|0088": _ds(sz),
        "0020|000d": study_uid,
        "0020|000e": series_uid,
        "0020|0011": str(int(series_number)),
        "0020|0037": "\\".join(_ds(v) for v in (*d[:, 0], *d[:, 1])),
        "0020|0052": frame_uid,
        "0028|0030": f"{_ds(sy)}\\{_ds(sx)}",
        "0028|0100": "16",  # int16 pixels: bits allocated, stored, high bit, signed
        "0028|0101": "16",
        "0028|0102": "15",
        "0028|0103": "1",
        "0028|1052": _ds(intercept),
        "0028|1053": _ds(slope),
        "0028|1054": "HU" if modality == "CT" else "US",
    }


def _ds(value: float) -> str:
    """A DICOM decimal string (at most 16 characters) as precise as that allows."""
    value = float(value) + 0.0  # no "-0"
    for digits in range(16, 0, -1):
        text = f"{value:.{digits}g}"
        if len(text) <= 16:
            return text
    raise ValueError(f"{value} does not fit a DICOM decimal string")
