"""Throughput of `expression grade` (photo sets per second) against the landmark step alone.

A set is the sample head's frontal photo as rest plus a synthetic one-sided smile (the left
commissure moved), 512 x 512. The baseline, run beside it, is MediaPipe Face Mesh on the same
two photos (medface.face's detector, already warm); the ratio is the share of the grading's
time that is landmarks. No figures are drawn (the pictures are drawn only when written).

Run: python benchmarks/expression.py [--sets N]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "expression"))


def _photos():
    from conftest import warp  # the tests' one-sided movement

    from medface.face import get_detector
    from medface.io import read_image

    rest = read_image(REPO / "sample_data" / "photo_frontal.png")
    mesh = get_detector().detect(rest.pixels)[0].landmarks
    eye = np.linalg.norm(mesh[263] - mesh[33])
    return {"rest": rest, "smile": warp(rest, mesh[291], np.array([0.12, -0.10]) * eye, 0.12 * eye)}


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
