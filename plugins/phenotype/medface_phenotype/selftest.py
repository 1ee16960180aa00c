"""Self-test: the photo checks, then the screening pipeline on the sample photos.

1. `inspect` flags a dark, blurred test card and passes a sharp one; the demo model's weights
   match their hash.
2. `screen` on the sample head's frontal photo (``sample_data/photo_frontal.png``, an
   unaffected phantom face) with the demo model: the face is found, passes the quality gate and
   is ranked; the aligned face and the attention map are written and shown in the report.
3. The same screening (through :class:`~medface_phenotype.screening.Screener`) gives each of the
   three condition photos (hypertelorism, micrognathia, midface retrusion; severe) a higher
   syndromic score than the unaffected face, and refuses the profile photo with its reason.

The sample photos are taken from ``$MEDFACE_SAMPLE_DATA``, ``./sample_data`` or the checkout's
``sample_data``; where none is found, ``medface sample-data`` writes them into the work folder.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

FRONTAL, PROFILE = "photo_frontal.png", "photo_left.png"
CONDITION_PHOTOS = ("condition_hypertelorism.png", "condition_micrognathia.png", "condition_midface_retrusion.png")


def _test_card(size: int = 256) -> np.ndarray:
    y, x = np.mgrid[0:size, 0:size]
    checker = ((x // 16 + y // 16) % 2).astype(np.float32)
    disc = ((x - size / 2) ** 2 + (y - size / 2) ** 2 < (size / 3) ** 2).astype(np.float32)
    luma = 60 + 120 * checker * 0.6 + 60 * disc
    return np.repeat(luma[..., None], 3, axis=2).astype(np.uint8)


def _sample_folder(workdir: Path) -> Path:
    """A folder with the sample photos (see the module docstring)."""
    from medface.phantom.sample_data import find_sample_data, write_sample_data

    found = find_sample_data((FRONTAL, PROFILE, *CONDITION_PHOTOS))
    if found is not None:
        return found

    write_sample_data(workdir / "sample")
    return workdir / "sample"


def _check_photo_checks(workdir: Path) -> None:
    import medface
    from medface.data import FaceImage
    from medface.io import write_image
    from medface.runtime import verify_package

    from .screening import DEMO_MODEL

    card = _test_card()
    write_image(FaceImage(card), workdir / "card.png")
    result = medface.run("phenotype.inspect", image=workdir / "card.png")
    assert result.summary["verdict"] == "acceptable", result.summary
    dark_blurred = (np.full_like(card, 20) + (card[::4, ::4].repeat(4, 0).repeat(4, 1) // 20)).astype(np.uint8)
    write_image(FaceImage(dark_blurred), workdir / "bad.png")
    verdict = medface.run("phenotype.inspect", image=workdir / "bad.png").summary["verdict"]
    assert "underexposed" in verdict and "blurred" in verdict, verdict
    problems = verify_package(DEMO_MODEL)
    assert not problems, f"the bundled demo model is damaged: {problems}"


def _check_screen_command(photo: Path, out: Path) -> float:
    """Screen the unaffected sample face through the command; returns its syndromic score."""
    import medface

    result = medface.run("phenotype.screen", image=photo, out=out)
    assert result.summary["screened"] is True, f"the sample's frontal photo was not screened: {result.summary}"
    assert result.tables["conditions"], "no ranked conditions"
    for name in ("aligned_face", "attention"):
        assert Path(result.outputs[name]).is_file(), f"{name} was not written"
    assert len(result.figures) == 2 and (out / "report.html").is_file(), "the report lacks its pictures"
    return float(result.summary["syndromic_score"])


def selftest(workdir: Path) -> str:
    from medface.io import read_image

    from .screening import Screener

    _check_photo_checks(workdir)
    folder = _sample_folder(workdir)
    unaffected = _check_screen_command(folder / FRONTAL, workdir / "screen")
    screener = Screener(attention=False)
    for name in CONDITION_PHOTOS:
        found = screener.screen_one(read_image(folder / name))
        assert found.screened, f"{name}: {found.verdict}"
        assert found.syndromic_score > unaffected, (f"{name} scores {found.syndromic_score:.3f}, not above the "
                                                    f"unaffected face's {unaffected:.3f}")
    profile = screener.screen_one(read_image(folder / PROFILE))
    assert not profile.screened and profile.verdict.startswith("refused"), profile.verdict
    return ("the demo model's weights match their hash; the unaffected sample face is screened with its aligned face "
            f"and attention map (syndromic score {unaffected:.2f}), each condition photo scores higher, and the "
            "profile photo is refused")
