"""Self-test: the photo checks, the demo model's integrity and the screening gate."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _test_card(size: int = 256) -> np.ndarray:
    y, x = np.mgrid[0:size, 0:size]
    checker = ((x // 16 + y // 16) % 2).astype(np.float32)
    disc = ((x - size / 2) ** 2 + (y - size / 2) ** 2 < (size / 3) ** 2).astype(np.float32)
    luma = 60 + 120 * checker * 0.6 + 60 * disc
    return np.repeat(luma[..., None], 3, axis=2).astype(np.uint8)


def selftest(workdir: Path) -> str:
    import medface
    from medface.data import FaceImage
    from medface.io import write_image

    card = _test_card()
    good = workdir / "card.png"
    write_image(FaceImage(card), good)
    result = medface.run("phenotype.inspect", image=good, out=workdir / "good")
    assert result.summary["verdict"] == "acceptable", result.summary
    assert (workdir / "good" / "result.json").is_file(), "result.json was not written"

    dark_blurred = (np.full_like(card, 20) + (card[::4, ::4].repeat(4, 0).repeat(4, 1) // 20)).astype(np.uint8)
    bad = workdir / "bad.png"
    write_image(FaceImage(dark_blurred), bad)
    result = medface.run("phenotype.inspect", image=bad)
    verdict = result.summary["verdict"]
    assert "underexposed" in verdict and "blurred" in verdict, verdict

    from medface.runtime import verify_package

    from .screen import DEMO_MODEL

    problems = verify_package(DEMO_MODEL)
    assert not problems, f"the bundled demo model is damaged: {problems}"
    result = medface.run("phenotype.screen", image=good)
    assert result.summary["screened"] is False and "no face" in result.summary["verdict"], result.summary
    return ("exposure and sharpness checks flag a dark, blurred photo and pass a sharp one; the demo model's "
            "weights match their hash; a photo without a face is refused")
