"""`phenotype inspect`: read a face photo and report its geometry, exposure and sharpness."""

from __future__ import annotations

from medface.data import FaceImage, Result
from medface.face.photo_quality import assess


def inspect_photo(image: FaceImage, min_size: int = 112) -> Result:
    """CLI entry of `phenotype inspect` (the runner writes result.json when given an output folder)."""
    quality = assess(image.pixels, min_size=min_size)
    summary = {
        "size_px": f"{image.width} x {image.height}",
        "exif_orientation": image.exif_orientation,
        "mean_luma": quality.mean_luma,
        "sharpness": quality.sharpness,
        "verdict": "acceptable" if quality.acceptable else "; ".join(quality.verdicts),
    }
    return Result(command="phenotype.inspect", summary=summary, metrics=quality.to_dict(),
                  warnings=list(quality.verdicts),
                  limits=["Checks image exposure and sharpness only; face detection and pose checks come with "
                          "the screening command."])
