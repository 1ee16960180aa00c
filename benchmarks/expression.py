"""Throughput of `expression grade` (photo sets per second) against the landmark step alone.

A set is the sample expression session (``sample_data/expressions``: the phantom head in all
seven expressions with a moderate right-sided palsy, 448 x 448 px). The baseline, run beside it,
is MediaPipe Face Mesh on the same seven photos (medface.face's detector, already warm); the
ratio is the share of the grading's time that is landmarks. No figures are drawn (the pictures
are drawn only when written).

Run: python benchmarks/expression.py [--sets N]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _photos() -> dict:
    from medface_expression.photoset import photos_in_folder

    from medface.io import read_image

    found, _ = photos_in_folder(REPO / "sample_data" / "expressions")
    return {expression: read_image(path) for expression, path in found.items()}


def _rate(fn, n: int) -> float:
    fn()  # warm
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", type=int, default=20)
    args = parser.parse_args()
    from medface.face import get_detector
    from medface_expression import grade_photos

    photos, detector = _photos(), get_detector()
    landmarks_rate = _rate(lambda: [detector.detect(p.pixels) for p in photos.values()], args.sets)
    grade_rate = _rate(lambda: grade_photos(photos), args.sets)
    print(f"grade: {grade_rate:.2f} sets/s ({len(photos)} photos each); landmarks alone: {landmarks_rate:.2f} sets/s")
    print(f"sets={args.sets} photos_per_set={len(photos)} grade_sets_per_s={grade_rate:.3f} "
          f"landmarks_sets_per_s={landmarks_rate:.3f} ratio={grade_rate / landmarks_rate:.3f}")


if __name__ == "__main__":
    main()
