"""Screening throughput on the CPU: the whole pipeline against the CNN alone.

Photos: ``--photos`` phantom renders (512 x 512 PNG, written to a temporary folder once; the
sample data's photo renderer) cycled to ``-n`` items. Measured in the same run, with the
bundled demo model:

* pipeline: ``screen_many`` on the file paths: PNG decode, MediaPipe face mesh, quality gate,
  5-point alignment (in 2 threads), the network with mirror test-time augmentation on batches
  of 64 through the runtime's Predictor, calibrated softmax and gallery ranking;
* CNN alone: the same network (with the same mirror augmentation) on the already aligned
  crops, batches of 64.

ratio = pipeline / CNN alone (higher is better; 1 would mean decoding, detection and alignment
cost nothing). Goal: >= 20 photos/s end to end on a 2-core machine. Last line: key=value.

On a GPU machine the same script is the GPU benchmark: ``--device cuda --workers 14
--batch-size 256 -n 20000`` (goal: >= 2,000 photos/s end to end on one H100/H200, decoding and
detection in CPU worker threads). It needs the plugin's dependencies (mediapipe, MONAI); on a
machine with torch alone, bring their wheels along (see docs/performance.md).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path



def _photos(folder: Path, count: int) -> list[Path]:
    from medface.io import write_image
    from medface.phantom import cohort

    paths = []
    for member in cohort(count, conditions=["hypertelorism", "micrognathia"], seed=3):
        path = folder / f"photo_{member.index:03d}.png"
        write_image(member.photo(), path)
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--items", type=int, default=300)
    parser.add_argument("--photos", type=int, default=30)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()

    import torch

    from medface.runtime import Predictor
    from medface_phenotype.faces import prepare
    from medface.io import read_image
    from medface_phenotype.screen import DEMO_MODEL, screen_many

    with tempfile.TemporaryDirectory() as tmp:
        paths = _photos(Path(tmp), args.photos)
        items = [paths[i % len(paths)] for i in range(args.items)]
        crops = [prepare(read_image(p).pixels).crop for p in paths]
        crops = [crops[i % len(crops)] for i in range(args.items)]
        kw = dict(workers=args.workers, device=args.device, batch_size=args.batch_size)
        screen_many(items[:8], **kw)  # warm-up: model, detectors, threads

        t0 = time.perf_counter()
        results = screen_many(items, **kw)
        pipeline_s = time.perf_counter() - t0
        screened = sum(r["screened"] for r in results)

        predictor = Predictor(DEMO_MODEL, batch_size=args.batch_size, num_workers=0, device=args.device)
        predictor.predict(crops[:args.batch_size])
        t0 = time.perf_counter()
        predictor.predict(crops)
        cnn_s = time.perf_counter() - t0

    pipeline_rate, cnn_rate = args.items / pipeline_s, args.items / cnn_s
    print(f"photos: {args.items} ({args.photos} distinct 512x512 phantom PNGs), screened: {screened}")
    print(f"device: {predictor.device}, torch threads: {torch.get_num_threads()}, preprocessing workers: "
          f"{args.workers}, batch size: {args.batch_size}")
    print(f"whole pipeline (decode, detect, align, CNN x2 flips, rank): {pipeline_rate:8.1f} photos/s")
    print(f"CNN alone (aligned crops, x2 flips):                         {cnn_rate:8.1f} photos/s")
    print(f"ratio pipeline / CNN alone: {pipeline_rate / cnn_rate:.3f}   goal: pipeline >= 20 photos/s")
    print(f"pipeline_photos_per_s={pipeline_rate:.1f} cnn_photos_per_s={cnn_rate:.1f} "
          f"ratio={pipeline_rate / cnn_rate:.3f}")


if __name__ == "__main__":
    main()
