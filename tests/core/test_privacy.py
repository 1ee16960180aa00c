"""Privacy by default: inputs recorded by file name and sha256 (paths only when asked), header +
data volumes hashed with their data, the device used, face pictures linked / embedded / left out,
and no DICOM patient tag nor absolute path in any output of the plugins' main commands."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import medface
from medface.cli import main
from medface.data import FaceImage, Volume
from medface.data.provenance import sha256_file
from medface.io import write_image, write_volume

PROBE_MANIFEST = """
name = "probe"
title = "Privacy probe"
version = "1.0.0"
category = "Testing"
contributors = ["medface tests"]
help = "Reads a photo and a volume, declares a face picture and a chart, records a model."

[[commands]]
id = "look"
help = "Look at a photo and a volume."
python_name = "probe_pkg.commands:look"

[[commands.parameters]]
name = "image"
type = "image"
required = false
help = "A photo."

[[commands.parameters]]
name = "ct"
type = "volume"
required = false
help = "A volume."

[[commands.parameters]]
name = "model"
type = "file"
required = false
help = "A model file."

[[commands.parameters]]
name = "device"
type = "string"
default = "auto"
help = "auto or cpu."

[[commands.parameters]]
name = "out"
type = "directory"
channel = "output"
required = false
help = "Result folder."
"""

PROBE_CODE = """
import numpy as np
from medface.data import FaceImage, Result


def look(image=None, ct=None, model=None, device="auto", context=None):
    result = Result(command="probe.look", summary={"photo": image is not None})
    if ct is not None:
        result.summary["voxels"] = int(ct.array.size)
        result.warnings.append(f"read the volume {ct.source}")
    if image is not None:
        result.declare("face crop", "face_crop.png", image, kind="image", figure="face crop", face=True)
    chart = FaceImage(np.full((8, 8, 3), 200, np.uint8))
    result.declare("chart", "chart.png", chart, kind="image", figure="chart")
    if model is not None:
        context.record_model("probe model", model)
    return result
"""

# the DICOM attributes that identify a person (PS3.15 basic profile) and fake values for them
PATIENT_TAGS = {"0010|0010": "DOE^JOHNATHAN^Q", "0010|0020": "MRN4711XYZ", "0010|0030": "19610203",
                "0008|0050": "ACC98765ZZ", "0008|0080": "SAINT ELSEWHERE HOSPITAL"}
PATIENT_FOLDER = "DOE_JOHNATHAN_MRN4711XYZ"


@pytest.fixture
def probe(medface_plugins):
    medface_plugins.add("probe_pkg", manifest=PROBE_MANIFEST, modules={"commands.py": PROBE_CODE})
    return medface_plugins


@pytest.fixture
def patient_files(tmp_path):
    """A photo, a volume and a model file in a folder named after a (fake) patient."""
    folder = tmp_path / "Doe_Jane_1970-02-03"
    pixels = np.zeros((64, 48, 3), np.uint8)
    pixels[16:48, 12:36] = (180, 140, 120)
    photo = write_image(FaceImage(pixels), folder / "photo.png")
    ct = write_volume(Volume(np.arange(60, dtype=np.int16).reshape(3, 4, 5), spacing=(1.0, 1.0, 2.0)),
                      folder / "ct.nii.gz")
    model = folder / "weights.bin"
    model.write_bytes(b"not really weights")
    return {"photo": photo, "ct": ct, "model": model, "folder": folder}


def _every_output_byte(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _leaks(folder: Path, secrets) -> list[str]:
    found = []
    for name, data in _every_output_byte(folder).items():
        for secret in secrets:
            if secret.encode("utf-8") in data:
                found.append(f"{secret!r} in {name}")
    return found


# --------------------------------------------------------------------------- names, not paths

def test_inputs_and_models_are_recorded_by_name_and_sha256_not_path(probe, patient_files, tmp_path):
    out = tmp_path / "out"
    files = patient_files
    result = medface.run("probe.look", image=files["photo"], ct=files["ct"], model=files["model"], out=out)
    p = result.provenance
    by_name = {r.name: r for r in p.inputs}
    assert by_name["image"].file == "photo.png" and by_name["image"].sha256 == sha256_file(files["photo"])
    assert by_name["ct"].file == "ct.nii.gz" and by_name["ct"].sha256 == sha256_file(files["ct"])
    assert all(r.path is None for r in p.inputs + p.models)
    assert p.parameters["image"] == "photo.png" and p.parameters["out"] == "out"
    assert [(m.name, m.file, m.sha256) for m in p.models] == [("probe model", "weights.bin",
                                                                sha256_file(files["model"]))]
    saved = json.loads((out / "result.json").read_text(encoding="utf-8"))
    assert saved["outputs"]["result"] == "result.json" and saved["figures"]["chart"] == "chart.png"
    assert saved["warnings"] == ["read the volume ct.nii.gz"]  # a plugin's text loses the folders too
    assert saved["provenance"]["privacy"]["paths"] == "file names only"
    assert _leaks(out, [str(tmp_path), files["folder"].name]) == []


def test_paths_are_recorded_when_asked(probe, patient_files, tmp_path):
    photo = patient_files["photo"]
    result = medface.run("probe.look", image=photo, out=tmp_path / "out", record_paths=True)
    assert result.provenance.inputs[0].path == str(photo.resolve())
    assert main(["probe", "look", "--image", str(photo), "--out", str(tmp_path / "cli"), "--record-paths"]) == 0
    saved = json.loads((tmp_path / "cli" / "result.json").read_text(encoding="utf-8"))
    assert saved["provenance"]["inputs"][0]["path"] == str(photo.resolve())
    assert saved["provenance"]["privacy"]["paths"] == "recorded"


def test_header_and_data_volume_is_hashed_with_its_data(probe, tmp_path):
    import SimpleITK as sitk

    header = tmp_path / "head.mhd"
    image = sitk.GetImageFromArray(np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6))
    sitk.WriteImage(image, str(header), useCompression=False)
    raw = tmp_path / "head.raw"
    assert raw.is_file()
    first = medface.run("probe.look", ct=header).provenance.inputs[0]
    assert first.sha256 != sha256_file(header)  # not the header alone
    assert [part["file"] for part in first.parts] == ["head.mhd", "head.raw"]
    data = bytearray(raw.read_bytes())
    data[7] ^= 0x01  # one voxel changes; the header does not
    raw.write_bytes(bytes(data))
    second = medface.run("probe.look", ct=header).provenance.inputs[0]
    assert second.sha256 != first.sha256 and second.parts[0] == first.parts[0]


def test_the_device_recorded_is_the_one_used_not_auto(probe):
    result = medface.run("probe.look", device="auto")
    assert result.provenance.device == "cpu"


# --------------------------------------------------------------------------- face pictures

def test_face_pictures_are_linked_by_default_embedded_when_asked_and_left_out_on_request(probe, patient_files,
                                                                                         tmp_path):
    photo = patient_files["photo"]
    medface.run("probe.look", image=photo, out=tmp_path / "default")
    page = (tmp_path / "default" / "report.html").read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") == 1  # the chart only
    assert 'href="face_crop.png"' in page and (tmp_path / "default" / "face_crop.png").is_file()

    medface.run("probe.look", image=photo, out=tmp_path / "embedded", embed_images=True)
    page = (tmp_path / "embedded" / "report.html").read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") == 2

    assert main(["probe", "look", "--image", str(photo), "--out", str(tmp_path / "shared"), "--no-face-images"]) == 0
    shared = tmp_path / "shared"
    assert sorted(_every_output_byte(shared)) == ["chart.png", "report.html", "report.json", "result.json"]
    page = (shared / "report.html").read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") == 1 and "face_crop" not in page
    privacy = json.loads((shared / "result.json").read_text(encoding="utf-8"))["provenance"]["privacy"]
    assert privacy["face_images"] == "left out" and privacy["left_out"] == ["face crop"]


# --------------------------------------------------------------------------- the plugins, on tagged DICOM

def write_tagged_series(volume: Volume, folder: Path) -> Path:
    """``volume`` as a DICOM CT series whose every slice carries the patient tags above."""
    import SimpleITK as sitk

    folder.mkdir(parents=True)
    image = sitk.GetImageFromArray(np.round(volume.array).astype(np.int16))
    image.SetSpacing(volume.spacing)
    image.SetOrigin(volume.origin)
    direction = np.asarray(volume.direction, float)
    image.SetDirection(tuple(direction.ravel()))
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    root = "1.2.826.0.1.3680043.2.1125.4711"
    for k in range(image.GetDepth()):
        tags = {**PATIENT_TAGS, "0008|0060": "CT", "0020|000d": f"{root}.1", "0020|000e": f"{root}.2",
                "0008|0018": f"{root}.3.{k + 1}", "0020|0013": str(k + 1), "0028|1052": "0", "0028|1053": "1",
                "0020|0032": "\\".join(f"{v:.6f}" for v in image.TransformIndexToPhysicalPoint((0, 0, k))),
                "0020|0037": "\\".join(f"{v:.6f}" for v in (*direction[:, 0], *direction[:, 1]))}
        slice_ = image[:, :, k]
        for tag, value in tags.items():
            slice_.SetMetaData(tag, value)
        writer.SetFileName(str(folder / f"IMG{k + 1:04d}.dcm"))
        writer.Execute(slice_)
    return folder


@pytest.fixture(scope="module")
def tagged_series(tmp_path_factory, repo_root_module):
    """The sample head's 3 mm CT as a DICOM series with patient tags, in a folder named after the
    (fake) patient."""
    from medface.io import read_volume

    sample = repo_root_module / "sample_data" / "head_ct_dicom"
    if sample.is_dir():
        volume = read_volume(sample)
    else:  # no sample data: the phantom CT at 3 mm (slower)
        from medface import phantom

        volume = phantom.head_ct(phantom.make_head(phantom.mean_subject("F")), spacing=3.0, seed=1)
    root = tmp_path_factory.mktemp("dicom")
    series = write_tagged_series(volume, root / PATIENT_FOLDER / "ct")
    import SimpleITK as sitk

    reader = sitk.ImageFileReader()
    reader.SetFileName(str(next(series.iterdir())))
    reader.ReadImageInformation()
    assert reader.GetMetaData("0010|0010").strip() == PATIENT_TAGS["0010|0010"]  # the tags are really there
    return root, series


@pytest.fixture(scope="module")
def repo_root_module() -> Path:
    return Path(__file__).resolve().parents[2]


def _secrets(root: Path) -> list[str]:
    return [*PATIENT_TAGS.values(), "DOE^JOHNATHAN", PATIENT_FOLDER, str(root), str(root.resolve())]


@pytest.fixture
def installed(medface_plugins):
    medface_plugins.include_installed()
    return medface_plugins


def test_no_patient_tag_or_path_in_any_output_of_the_ct_and_photo_commands(installed, tagged_series,
                                                                            repo_root_module, tmp_path):
    root, series = tagged_series
    runs = {"inspect": medface.run("surgery.inspect-ct", ct=series, out=root / "inspect"),
            "segment": medface.run("surgery.segment", ct=series, target_faces=3000, out=root / "segment")}
    assert runs["segment"].summary and (root / "segment" / "skull.ply").is_file()
    photo_folder = root / "Doe_Jane_1970-02-03"
    photo_folder.mkdir(exist_ok=True)
    photo = shutil.copy(repo_root_module / "sample_data" / "photo_frontal.png", photo_folder / "photo.png")
    screened = medface.run("phenotype.screen", image=photo, out=root / "screen")
    assert screened.provenance.device not in ("", "auto")
    for name in ("inspect", "segment", "screen"):
        leaks = _leaks(root / name, _secrets(root) + ["Doe_Jane_1970-02-03"])
        assert leaks == [], f"{name}: {leaks}"
    page = (root / "screen" / "report.html").read_text(encoding="utf-8")
    assert "data:image" not in page and 'href="aligned_face.png"' in page  # the face is linked, not embedded


@pytest.mark.slow
def test_no_patient_tag_or_path_in_reconstruction_and_simulation_and_custody_is_traceable(installed, tagged_series,
                                                                                         repo_root_module):
    from medface import audit

    root, series = tagged_series
    log = root / "audit.jsonl"
    medface.run("surgery.segment", ct=series, target_faces=5000, figures=False, out=root / "seg2", audit_log=log,
                purpose="casework", consent="CASE-17")
    medface.run("forensic.reconstruct", skull=root / "seg2" / "skull.ply", variants=2, out=root / "rec",
                audit_log=log, purpose="casework", consent="CASE-17")
    medface.run("forensic.reconstruct", ct=series, variants=2, out=root / "rec_ct")
    landmarks = repo_root_module / "sample_data" / "landmarks.mrk.json"
    medface.run("surgery.plan", landmarks=landmarks, procedure="le_fort_i", advance=4.0,
                out=root / "plan" / "plan.json")
    medface.run("surgery.simulate", plan=root / "plan" / "plan.json", ct=series, tissue="preview", out=root / "sim")
    for name in ("seg2", "rec", "rec_ct", "plan", "sim"):
        leaks = _leaks(root / name, _secrets(root))
        assert leaks == [], f"{name}: {leaks}"
    models = json.loads((root / "rec" / "result.json").read_text(encoding="utf-8"))["provenance"]["models"]
    assert {m["name"] for m in models} >= {"skull-face model", "template head"}
    chain = audit.trace(log, root / "rec" / "face.ply")
    assert [e["command"] for e in chain] == ["forensic.reconstruct", "surgery.segment"]
    assert chain[1]["inputs"][0]["file"] == "ct" and chain[0]["models"] and chain[0]["purpose"] == "casework"
