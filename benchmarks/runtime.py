"""CPU inference throughput: the batched Predictor against a naive one-image-at-a-time loop.

A screening-sized CNN (``medface.SmallCNN``, width 32, 112x112 RGB) is saved as a model package
in a temporary folder. N generated uint8 112x112x3 images go through

* baseline (naive): for each image, convert to float CHW, add a batch axis, forward; the model
  loaded from the same package (so already eval mode and channels-last, its best single-image
  layout), under ``torch.inference_mode()``;
* the Predictor: batches of 32, 2 preprocessing threads, channels-last.

Both runs are checked to agree to 1e-4. ratio = predictor / naive (higher is better; > 1 means
the Predictor wins). Prints ``key=value`` on its last line.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from medface.runtime.device import configure_threads
from medface.runtime.networks import build_network
from medface.runtime.package import load_package, save_package
from medface.runtime.predictor import Predictor, default_transform

ARGS = {"in_channels": 3, "num_classes": 2, "width": 32, "embedding_dim": 64}
SIZE = 112


def _card() -> dict:
    return {
        "name": "benchmark-smallcnn", "version": "0.0.1",
        "architecture": {"name": "medface.SmallCNN", "args": dict(ARGS)},
        "inputs": {"image": {"type": "image", "format": "RGB", "num_channels": 3, "spatial_shape": [SIZE, SIZE],
                             "dtype": "float32", "value_range": [0, 1]}},
        "outputs": {"logits": {"type": "logits", "num_channels": ARGS["num_classes"], "dtype": "float32"}},
        "labels": [f"class{i}" for i in range(ARGS["num_classes"])],
        "preprocessing": {"transform": "uint8 RGB HxWxC -> float CxHxW / 255"},
        "training_data": "none: random weights (benchmark)", "metrics": {},
        "intended_use": "benchmark only", "limitations": "random weights", "licence": "Apache-2.0",
    }


def naive(model: torch.nn.Module, images: list[np.ndarray]) -> list[np.ndarray]:
    out = []
    with torch.inference_mode():
        for image in images:
            x = torch.from_numpy(default_transform(image))[None]
            out.append(model(x)[0].numpy().copy())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--items", type=int, default=600)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: all cores)")
    opts = parser.parse_args()

    threads = configure_threads(opts.threads)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8) for _ in range(opts.items)]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "smallcnn"
        save_package(build_network("medface.SmallCNN", dict(ARGS)), _card(), folder)

        model = load_package(folder, device="cpu").model.eval()
        naive(model, images[:8])  # warm-up
        start = time.perf_counter()
        expected = naive(model, images)
        t_naive = time.perf_counter() - start

        predictor = Predictor(folder, device="cpu", batch_size=opts.batch_size, num_workers=opts.workers)
        predictor.predict(images[: opts.batch_size])  # load + warm-up
        start = time.perf_counter()
        preds = predictor.predict(images)
        t_pred = time.perf_counter() - start

    assert preds.ok() and len(preds) == len(images)
    worst = max(float(np.abs(a - b).max()) for a, b in zip(preds.outputs, expected))
    assert worst < 1e-4, f"Predictor and naive loop disagree by {worst}"
    naive_rate, pred_rate = len(images) / t_naive, len(images) / t_pred
    print(f"model: medface.SmallCNN width {ARGS['width']}, {SIZE}x{SIZE} RGB uint8, torch threads {threads}")
    print(f"baseline naive loop (1 image per forward): {naive_rate:8.1f} items/s  ({t_naive:.2f} s)")
    print(f"Predictor (batch {opts.batch_size}, {opts.workers} workers):     {pred_rate:8.1f} items/s  ({t_pred:.2f} s)")
    print(f"max |difference| {worst:.2e}")
    print(f"items={len(images)} naive_items_per_s={naive_rate:.1f} predictor_items_per_s={pred_rate:.1f} "
          f"ratio={pred_rate / naive_rate:.2f}")


if __name__ == "__main__":
    main()
