"""GPU inference throughput: the Predictor fed uint8 images from CPU memory, against the raw
forward pass on data already on the GPU.

Runs with torch and numpy alone: ``medface/runtime/predictor.py`` and ``device.py`` (and the
tiny ``medface/errors.py``) are imported by path, without medface's package ``__init__`` files
or any other dependency, and the network is an in-memory ResNet-style screening CNN defined
here (no package, no MONAI).

For 112 and 224 px it prints images/s of

* baseline (raw): ``model(x)`` on a float batch already on the GPU, channels-last, under bf16
  autocast and ``torch.inference_mode()``, synchronised at the end;
* the Predictor: a list of uint8 HxWx3 numpy images in CPU memory (pinned staging,
  non-blocking copies, conversion to float on the GPU, preprocessing threads);

and ratio = predictor / raw (goal >= 0.8). Without CUDA it prints ``cuda_available=False`` and
exits 0; ``--device cpu`` runs the same code on the CPU (a smoke test of the script, not a
figure: the tests use it). The last line is ``key=value``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import types
from pathlib import Path

import torch
from torch import nn

REPO = Path(__file__).resolve().parents[1]


def _import_runtime():
    """Import medface.runtime.predictor by path, skipping the package __init__ files."""
    for name, folder in (("medface", REPO / "medface"), ("medface.runtime", REPO / "medface" / "runtime")):
        if name not in sys.modules:
            module = types.ModuleType(name)
            module.__path__ = [str(folder)]
            sys.modules[name] = module
    return importlib.import_module("medface.runtime.predictor")


class _Block(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.skip = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                     if stride != 1 or cin != cout else nn.Identity())

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(y)) + self.skip(x))


class ScreeningCNN(nn.Module):
    """ResNet-18-shaped classifier (11 M parameters): a typical screening network."""

    def __init__(self, num_classes: int = 2, width: int = 64):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, width, 7, 2, 3, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
                                  nn.MaxPool2d(3, 2, 1))
        layers, cin = [], width
        for i, blocks in enumerate((2, 2, 2, 2)):
            cout = width * 2**i
            for b in range(blocks):
                layers.append(_Block(cin, cout, 2 if (b == 0 and i > 0) else 1))
                cin = cout
        self.layers = nn.Sequential(*layers)
        self.head = nn.Linear(cin, num_classes)

    def forward(self, x):
        return self.head(torch.flatten(nn.functional.adaptive_avg_pool2d(self.layers(self.stem(x)), 1), 1))


def _sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _raw(model, device, autocast, size: int, batch: int, batches: int) -> float:
    x = torch.rand(batch, 3, size, size, device=device).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode(), autocast(device):
        for _ in range(3):
            model(x)
        _sync(device)
        start = time.perf_counter()
        for _ in range(batches):
            model(x)
        _sync(device)
    return batch * batches / (time.perf_counter() - start)


def _predictor(predictor, images, device) -> float:
    predictor.predict(images[: 2 * predictor.batch_size])  # warm-up
    _sync(device)
    start = time.perf_counter()
    preds = predictor.predict(images)
    _sync(device)
    elapsed = time.perf_counter() - start
    assert preds.ok() and len(preds) == len(images), preds.failures[:3]
    return len(images) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[112, 224])
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=4.0, help="rough length of each timed run")
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda",
                        help="cpu: a smoke test of the script on any machine, not a benchmark figure")
    opts = parser.parse_args()

    if opts.device == "cuda" and not torch.cuda.is_available():
        print("cuda_available=False")
        return
    import numpy as np

    runtime = _import_runtime()
    from medface.runtime.device import autocast, prepare_model, resolve_device

    device = resolve_device(opts.device)
    torch.manual_seed(0)
    torch.backends.cudnn.benchmark = True
    model = prepare_model(ScreeningCNN(), device, channels_last=True)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU (smoke test, not a figure)"
    print(f"device: {name}, torch {torch.__version__}, batch {opts.batch_size}, "
          f"{opts.workers} preprocessing threads")
    ratios, fields = [], []
    for size in opts.sizes:
        probe = _raw(model, device, autocast, size, opts.batch_size, 5)
        batches = max(5, int(probe * opts.seconds / opts.batch_size))
        raw = _raw(model, device, autocast, size, opts.batch_size, batches)
        n = max(4 * opts.batch_size, int(raw * opts.seconds))
        rng = np.random.default_rng(size)
        base = rng.integers(0, 256, (256, size, size, 3), dtype=np.uint8)
        images = [base[i % 256] for i in range(n)]  # views: distinct-enough images without n copies
        predictor = runtime.Predictor(model, device=device, batch_size=opts.batch_size, num_workers=opts.workers)
        pred = _predictor(predictor, images, device)
        ratio = pred / raw
        ratios.append(ratio)
        fields.append(f"raw_{size}={raw:.0f} predictor_{size}={pred:.0f} ratio_{size}={ratio:.2f}")
        print(f"{size}px: baseline raw forward {raw:9.0f} images/s | Predictor from uint8 CPU {pred:9.0f} images/s | "
              f"ratio {ratio:.2f} ({n} images)")
    print(f"cuda_available={device.type == 'cuda'} {' '.join(fields)} ratio={min(ratios):.2f}")


if __name__ == "__main__":
    main()
