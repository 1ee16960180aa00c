"""Detection, alignment and the quality gate on real portraits, phantom photos and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageFilter

from medface.errors import InputError
from medface.io import read_image
from medface_phenotype.align import align, apply, similarity, template
from medface_phenotype.faces import prepare

PORTRAITS = ("astronaut.png", "grace_hopper.jpg")


def _eye_error(face, size):
    _, m = align(np.zeros((8, 8, 3), np.uint8), face.points5, size)
    return np.linalg.norm(apply(m, face.points5[:2]) - template(size)[:2], axis=1)


@pytest.mark.parametrize("name", PORTRAITS)
def test_real_portrait_one_face_eyes_on_template(shared_data, name):
    pixels = read_image(shared_data / "faces" / name).pixels
    face = prepare(pixels)
    assert len(face.faces) == 1
    assert not face.quality.refused, face.quality.verdict
    for size in (112, 224):
        err = _eye_error(face.face, size)
        assert err.max() < 3.0, (size, err)
    # the crop really shows the eyes there: detecting again on the 224 crop finds them
    again = prepare(align(pixels, face.face.points5, 224)[0])
    assert np.linalg.norm(again.face.points5[:2] - template(224)[:2], axis=1).max() < 4.0


@pytest.mark.parametrize("name", PORTRAITS)
def test_exif_orientation_6_gives_the_same_crop(shared_data, tmp_path, name):
    pixels = read_image(shared_data / "faces" / name).pixels
    stored = Image.fromarray(pixels).transpose(Image.Transpose.ROTATE_90)  # orientation 6 turns it back
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "rotated.png"
    stored.save(path, exif=exif)
    rotated = read_image(path)
    assert rotated.exif_orientation == 6
    a, b = prepare(pixels), prepare(rotated.pixels)
    assert np.abs(a.crop.astype(int) - b.crop.astype(int)).max() <= 1
    # and as a JPEG (lossy): the same face, the same crop within compression noise
    jpg = tmp_path / "rotated.jpg"
    stored.convert("RGB").save(jpg, quality=95, exif=exif)
    c = prepare(read_image(jpg).pixels)
    assert np.linalg.norm(c.face.points5 - a.face.points5, axis=1).max() < 2.0
    assert np.abs(c.crop.astype(float) - a.crop.astype(float)).mean() < 4.0


def test_similarity_recovers_a_known_transform():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, (5, 2))
    angle, scale, shift = 0.3, 1.7, np.array([12.0, -4.0])
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    dst = scale * src @ rot.T + shift
    m = similarity(src, dst, np.array([5, 5, 1, 1, 1.0]))
    assert np.allclose(apply(m, src), dst, atol=1e-9)
    with pytest.raises(InputError, match="coincide"):
        similarity(np.ones((5, 2)), dst)


def test_phantom_photos_go_through_the_detector(repo_root):
    for name in ("photo_frontal.png", "condition_hypertelorism.png", "condition_micrognathia.png"):
        face = prepare(read_image(repo_root / "sample_data" / name).pixels)
        assert len(face.faces) == 1 and face.usable, (name, face.quality.verdict)
        err = _eye_error(face.face, 112)
        assert err.max() < 3.0


def _check(face, name):
    return next(c for c in face.quality.checks if c.name == name)


def test_profile_photo_is_refused_for_pose(repo_root):
    face = prepare(read_image(repo_root / "sample_data" / "photo_left.png").pixels)
    assert face.quality.refused
    assert any(w in face.quality.verdict for w in ("turned", "landmarks could not be fitted", "no face"))


def test_two_faces_are_refused(repo_root):
    a = read_image(repo_root / "sample_data" / "photo_frontal.png").pixels
    b = read_image(repo_root / "sample_data" / "condition_hypertelorism.png").pixels
    face = prepare(np.concatenate([a, b], axis=1))
    assert face.quality.refused and _check(face, "face_count").status == "fail"
    assert "2 faces" in face.quality.verdict


def test_small_face_is_refused(repo_root):
    a = Image.open(repo_root / "sample_data" / "photo_frontal.png").convert("RGB").resize((96, 96))
    canvas = Image.new("RGB", (640, 480), (200, 200, 190))
    canvas.paste(a, (300, 200))
    face = prepare(np.asarray(canvas))
    assert face.quality.refused
    assert "no face" in face.quality.verdict or _check(face, "face_size").status == "fail"


def test_blurred_and_dark_portraits_are_refused(shared_data):
    img = Image.open(shared_data / "faces" / "grace_hopper.jpg").convert("RGB")
    sharp = prepare(np.asarray(img))
    assert _check(sharp, "sharpness").status == "pass"
    blurred = prepare(np.asarray(img.filter(ImageFilter.GaussianBlur(6))))
    assert _check(blurred, "sharpness").status == "fail", blurred.quality.verdict
    dark = prepare((np.asarray(img).astype(float) * 0.12).astype(np.uint8))
    if dark.faces:  # the detector may already miss so dark a face: then the verdict is "no face"
        assert _check(dark, "exposure").status == "fail", dark.quality.verdict
    assert dark.quality.refused


# ----------------------------------------------------------------------------- bad files


def test_non_image_and_truncated_jpeg_give_clear_errors(tmp_path, repo_root):
    fake = tmp_path / "notes.jpg"
    fake.write_text("this is not a photo", encoding="utf-8")
    with pytest.raises(InputError):
        read_image(fake)
    jpg = tmp_path / "photo.jpg"
    Image.open(repo_root / "sample_data" / "photo_frontal.png").convert("RGB").save(jpg, quality=90)
    cut = tmp_path / "truncated.jpg"
    cut.write_bytes(jpg.read_bytes()[: jpg.stat().st_size // 2])
    with pytest.raises(InputError, match="truncated|corrupt|cannot be read"):
        read_image(cut)


def test_sixteen_bit_png_and_cmyk_jpeg_are_screened_like_the_original(tmp_path, repo_root):
    rgb = Image.open(repo_root / "sample_data" / "photo_frontal.png").convert("RGB")
    ref = prepare(np.asarray(rgb))
    grey16 = (np.asarray(rgb.convert("L")).astype(np.uint16) * 257)
    path16 = tmp_path / "grey16.png"
    Image.fromarray(grey16).save(path16)
    g = prepare(read_image(path16).pixels)
    assert g.faces and np.linalg.norm(g.face.points5 - ref.face.points5, axis=1).max() < 4.0
    cmyk = tmp_path / "cmyk.jpg"
    rgb.convert("CMYK").save(cmyk, quality=95)
    c = prepare(read_image(cmyk).pixels)
    assert c.usable and np.linalg.norm(c.face.points5 - ref.face.points5, axis=1).max() < 2.0


def test_one_pixel_and_faceless_images_get_verdicts():
    tiny = prepare(np.zeros((1, 1, 3), np.uint8))
    assert tiny.quality.refused and "too small" in tiny.quality.verdict
    y, x = np.mgrid[0:480, 0:640]
    landscape = np.stack([x % 256, y % 256, (x + y) % 256], axis=2).astype(np.uint8)
    none = prepare(landscape)
    assert none.quality.refused and none.quality.verdict == "refused: no face was found in the photo"


def test_fifty_megapixel_photo_is_screened(tmp_path, repo_root):
    small = Image.open(repo_root / "sample_data" / "photo_frontal.png").convert("RGB")
    big = small.resize((7072, 7072), Image.Resampling.BILINEAR)  # 50 megapixels
    path = tmp_path / "big.jpg"
    big.save(path, quality=85)
    pixels = read_image(path).pixels
    assert pixels.shape[0] * pixels.shape[1] >= 50_000_000
    face = prepare(pixels)
    ref = prepare(np.asarray(small))
    assert face.usable, face.quality.verdict
    scale = 7072 / 512
    assert np.linalg.norm(face.face.points5[:2] / scale - ref.face.points5[:2], axis=1).max() < 2.0


def _with_a_smaller_copy(repo_root, scale: float) -> np.ndarray:
    """The phantom photo with a copy of itself, ``scale`` times as large, pasted beside it."""
    photo = Image.open(repo_root / "sample_data" / "photo_frontal.png").convert("RGB")
    copy = photo.resize((round(photo.width * scale), round(photo.height * scale)))
    canvas = Image.new("RGB", (photo.width + copy.width, photo.height), photo.getpixel((2, 2)))
    canvas.paste(photo, (0, 0))
    canvas.paste(copy, (photo.width, (photo.height - copy.height) // 2))
    return np.asarray(canvas)


def test_a_smaller_second_face_is_reported_and_the_largest_screened(repo_root, tmp_path):
    import medface
    from medface_phenotype.screening import Screener

    pixels = _with_a_smaller_copy(repo_root, 0.4)
    found = Screener(attention=False).screen_one(pixels)
    assert found.screened and len(found.faces) == 2
    message = _check(found, "face_found").message
    share = 100 * found.faces[1].width / found.faces[0].width
    x0, y0, x1, y1 = found.faces[0].box
    assert message.startswith("2 faces: screened the largest") and f"{share:.0f} % as wide" in message
    assert f"x {x0:.0f}-{x1:.0f}, y {y0:.0f}-{y1:.0f} px" in message
    assert x1 < 512 < found.faces[1].box[0]  # the screened face is the original, the other the copy
    Image.fromarray(pixels).save(tmp_path / "two.png")
    result = medface.run("phenotype.screen", image=tmp_path / "two.png")
    faces = result.metrics["faces"]
    assert [f["screened"] for f in faces] == [True, False]
    assert faces[1]["width_ratio"] == pytest.approx(share / 100, abs=1e-3) and faces[0]["width_ratio"] == 1.0
    assert all(len(f["box"]) == 4 and f["eye_distance_px"] > 0 and 0 < f["score"] <= 1 for f in faces)
    assert faces[1]["eye_distance_px"] < 0.6 * faces[0]["eye_distance_px"]
    assert any(row["finding"] == message for row in result.tables["quality checks"])


def test_a_half_size_second_face_is_still_ambiguous_and_both_are_named(repo_root, tmp_path):
    import medface

    pixels = _with_a_smaller_copy(repo_root, 0.5)
    face = prepare(pixels)
    assert face.quality.refused and len(face.faces) == 2
    message = _check(face, "face_count").message
    assert message.startswith("2 faces of similar size") and "the other is" in message and "50 %" in message
    Image.fromarray(pixels).save(tmp_path / "two.png")
    result = medface.run("phenotype.screen", image=tmp_path / "two.png")
    assert result.refused and [f["screened"] for f in result.metrics["faces"]] == [False, False]
