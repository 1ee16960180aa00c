"""Batch runs against one process: phenotype screening and forensic reconstruction.

Inputs (written once into ``--cache``, default a folder in the system's temporary folder, and
reused by later runs; never timed):

* ``--photos`` phantom photos (384 x 384 PNG). ``--distinct`` of them are rendered from
  phantom subjects (a fifth unaffected, the rest with condition presets); the others are
  copies of those renders made different by a mirror, a shift of a few pixels, a slight zoom
  and a change of exposure, so that every file is its own photo (its own sha256, its own crop)
  without rendering thousands of heads;
* ``--skulls`` phantom skulls (cranium + mandible, one PLY mesh each).

Measured in the same run, each into its own output folder, on the bundled demo models:

* phenotype ``screen`` (every item writes result.json, report.html, the aligned face and the
  attention map): **single**, ``medface.run`` in a loop in this process (warm: the model and
  the detector are loaded before the clock starts); **local**, ``medface.batch(engine="local",
  workers=W)``; **ray**, ``medface.batch(engine="ray", workers=W)``, one Ray task per photo on
  a cluster without GPUs (the default there); with ``--streaming`` also **ray (streaming)**, the
  command's Ray Data pipeline (prepare on CPU, the network in an actor, finish on CPU), the
  default on a cluster with GPUs. The batches are timed cold: starting the workers (or the Ray
  cluster), their imports and model loading are inside their time;
* forensic ``reconstruct --variants 2 --figures false``: single, local pool, Ray tasks.

Figures: items per second and the ratio to the single process (higher is better). Headline
``ratio`` = the better of the two phenotype batch ratios (local or ray) over the single
process. Goal (issue 5/9): the local pool and Ray reach at least 1.6 x one process on the
2-core machine. Last line: key=value.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

PHOTO_SIZE = 384


def _variant(pixels: np.ndarray, k: int) -> np.ndarray:
    """A render made into another photo: mirrored every other time, zoomed by up to 4 %, shifted
    by up to 6 px and exposed up to 8 % brighter or darker (deterministic in ``k``)."""
    from PIL import Image

    rng = np.random.default_rng([7, k])
    img = Image.fromarray(pixels[:, ::-1] if k % 2 else pixels)
    zoom = 1.0 + rng.uniform(0.0, 0.04)
    side = int(round(PHOTO_SIZE * zoom))
    img = img.resize((side, side), Image.Resampling.BILINEAR)
    dx, dy = (int(v) for v in rng.integers(0, side - PHOTO_SIZE + 1, 2)) if side > PHOTO_SIZE else (0, 0)
    out = np.asarray(img.crop((dx, dy, dx + PHOTO_SIZE, dy + PHOTO_SIZE)), np.float32)
    shift = rng.integers(-6, 7, 2)
    out = np.roll(out, tuple(int(s) for s in shift), axis=(0, 1))
    return np.clip(out * rng.uniform(0.92, 1.08), 0, 255).astype(np.uint8)


def make_photos(folder: Path, count: int, distinct: int) -> list[Path]:
    """``count`` photos in ``folder`` (made once: a complete folder is reused)."""
    from PIL import Image

    from medface.phantom import cohort
    from medface.phantom import tables as TB

    done = folder.with_name(folder.name + ".complete.json")  # beside the folder: not an input
    if done.is_file() and json.loads(done.read_text()) == {"photos": count, "distinct": distinct}:
        return sorted(folder.glob("photo_*.png"))
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    conditions = [c.id for c in TB.CONDITIONS]
    renders = []
    for member in cohort(min(distinct, count), conditions=conditions, unaffected_fraction=0.2, seed=17):
        renders.append(member.photo(size=(PHOTO_SIZE, PHOTO_SIZE)).pixels)
    paths = []
    for k in range(count):
        pixels = renders[k] if k < len(renders) else _variant(renders[k % len(renders)], k)
        path = folder / f"photo_{k:05d}.png"
        Image.fromarray(pixels).save(path)
        paths.append(path)
    done.write_text(json.dumps({"photos": count, "distinct": distinct}))
    return paths


def make_skulls(folder: Path, count: int) -> list[Path]:
    """``count`` phantom skulls as PLY meshes in ``folder`` (made once)."""
    from medface.data import SurfaceMesh
    from medface.io import write_mesh
    from medface.phantom import cohort

    done = folder.with_name(folder.name + ".complete.json")
    if done.is_file() and json.loads(done.read_text()) == {"skulls": count}:
        return sorted(folder.glob("skull_*.ply"))
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    paths = []
    for member in cohort(count, seed=5150):
        head = member.head
        cranium, mandible = head.cranium, head.mandible
        mesh = SurfaceMesh(np.concatenate([cranium.vertices, mandible.vertices]),
                           np.concatenate([cranium.faces, mandible.faces + len(cranium.vertices)]))
        paths.append(write_mesh(mesh, folder / f"skull_{member.index:03d}.ply"))
    done.write_text(json.dumps({"skulls": count}))
    return paths


def run_single(command: str, param: str, inputs: list[Path], out: Path, **params) -> tuple[float, dict]:
    """Seconds for ``medface.run`` on every input in this process (after one untimed warm-up run)
    and id -> headline of each result."""
    import medface
    from medface.batches.worker import headline
    from medface.errors import MedfaceError

    medface.run(command, **{param: inputs[0]}, **params, out=out / "_warmup")
    shutil.rmtree(out / "_warmup", ignore_errors=True)
    rows = {}
    started = time.perf_counter()
    for path in inputs:
        try:
            result = medface.run(command, **{param: path}, **params, out=out / path.stem)
        except MedfaceError as exc:
            rows[path.stem] = {"status": "failed", "error_class": type(exc).__name__}
            continue
        rows[path.stem] = {"status": "refused" if result.refused else "done", **headline(result.summary)}
    return time.perf_counter() - started, rows


def run_batch(command: str, folder: Path, out: Path, engine: str, workers: int, streaming: bool | None = None,
              **params) -> tuple[float, dict, str]:
    """Seconds for ``medface.batch`` over ``folder``, its rows by id and its engine's name."""
    import medface

    started = time.perf_counter()
    res = medface.batch(command, folder, out, engine=engine, workers=workers, progress=False, streaming=streaming,
                        **params)
    seconds = time.perf_counter() - started
    return seconds, {r["id"]: r for r in res.rows}, res.engine


def _agree(single: dict, batch: dict, key: str) -> int:
    """How many items the batch did differently from the single process (status or ``key``)."""
    off = 0
    for item, row in single.items():
        other = batch.get(item, {})
        if other.get("status") != row["status"]:
            off += 1
        elif row["status"] == "done" and key in row and other.get(key) != row[key]:
            off += 1
    return off


def measure(label: str, command: str, param: str, inputs: list[Path], folder: Path, out: Path, workers: int,
            key: str, streaming: bool = False, **params) -> dict:
    print(f"{label}: {len(inputs)} items, {workers} workers")
    single_s, single = run_single(command, param, inputs, out / "single", **params)
    figures = {"single": single_s}
    rows = {}
    runs = {"local": ("local", None), "ray": ("ray", None)}
    if streaming:
        runs["stream"] = ("ray", True)
    for run, (engine, stream) in runs.items():
        seconds, rows[run], name = run_batch(command, folder, out / run, engine, workers, stream, **params)
        figures[run] = seconds
        figures[f"{run}_engine"] = name
    n = len(inputs)
    print(f"  {'single process (warm)':<30} {single_s:8.1f} s {n / single_s:8.2f} items/s")
    for engine in runs:
        s = figures[engine]
        print(f"  {figures[engine + '_engine']:<30} {s:8.1f} s {n / s:8.2f} items/s   {single_s / s:5.2f} x one "
              f"process   differs from single on {_agree(single, rows[engine], key)} items")
    counts = {e: {st: sum(r["status"] == st for r in rows[e].values()) for st in ("done", "refused", "failed",
                                                                                  "crashed")} for e in rows}
    alone = {st: sum(r["status"] == st for r in single.values()) for st in ("done", "refused", "failed")}
    print(f"  statuses: single {alone}, " + ", ".join(f"{e} {counts[e]}" for e in runs))
    rates = {"n": n, "single": n / single_s}
    for run in runs:
        rates[run], rates[f"{run}_ratio"] = n / figures[run], single_s / figures[run]
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=2000, help="phantom photos to screen (default 2000)")
    parser.add_argument("--distinct", type=int, default=100, help="photos rendered from distinct phantom heads")
    parser.add_argument("--skulls", type=int, default=20, help="phantom skulls to reconstruct (default 20; 0: none)")
    parser.add_argument("--workers", type=int, default=2, help="batch workers (default 2)")
    parser.add_argument("--streaming", action="store_true", help="also time phenotype's streaming pipeline on Ray")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "medface-bench-batch",
                        help="folder for the generated inputs (reused)")
    args = parser.parse_args()

    started = time.perf_counter()
    photos = make_photos(args.cache / f"photos_{args.photos}_{args.distinct}", args.photos, args.distinct)
    skulls = make_skulls(args.cache / f"skulls_{args.skulls}", args.skulls) if args.skulls else []
    print(f"inputs: {len(photos)} photos, {len(skulls)} skulls in {args.cache} "
          f"({time.perf_counter() - started:.0f} s to make or find)")
    with tempfile.TemporaryDirectory(prefix="medface-bench-batch-") as tmp:
        out = Path(tmp)
        p = measure("phenotype screen", "phenotype.screen", "image", photos, photos[0].parent, out / "screen",
                    args.workers, "metric_top_condition", streaming=args.streaming)
        shutil.rmtree(out / "screen", ignore_errors=True)
        f = None
        if skulls:
            f = measure("forensic reconstruct --variants 2 --figures false", "forensic.reconstruct", "skull", skulls,
                        skulls[0].parent, out / "reconstruct", args.workers, "metric_skull_sex_estimate", variants=2,
                        figures=False)
    ratio = max(p["local_ratio"], p["ray_ratio"])
    print(f"headline ratio: the better phenotype batch over one process = {ratio:.2f} (goal >= 1.6 on 2 cores, "
          f"each of local and ray)")
    parts = [f"photos={p['n']}", f"workers={args.workers}", f"photos_single_per_s={p['single']:.3f}",
             f"photos_local_per_s={p['local']:.3f}", f"photos_ray_per_s={p['ray']:.3f}",
             f"photos_local_ratio={p['local_ratio']:.2f}", f"photos_ray_ratio={p['ray_ratio']:.2f}"]
    if "stream" in p:
        parts += [f"photos_streaming_per_s={p['stream']:.3f}", f"photos_streaming_ratio={p['stream_ratio']:.2f}"]
    if f is not None:
        parts += [f"skulls={f['n']}", f"skulls_single_per_s={f['single']:.4f}", f"skulls_local_per_s={f['local']:.4f}",
                  f"skulls_ray_per_s={f['ray']:.4f}", f"skulls_local_ratio={f['local_ratio']:.2f}",
                  f"skulls_ray_ratio={f['ray_ratio']:.2f}"]
    print(" ".join(parts + [f"ratio={ratio:.2f}"]))


if __name__ == "__main__":
    main()
