"""Shared by the evaluation scripts: a phantom data set rendered by parallel shards (one process
per core), then its metadata.csv written once."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from medface_phenotype.dataset import PHANTOM_AGES, finish_phantom_dataset, write_phantom_dataset

WORKERS = 2


def _shard(args):
    out, spc, controls, seed, ages, index = args
    write_phantom_dataset(out, subjects_per_condition=spc, controls=controls, photos_per_subject=1, seed=seed,
                          shard=(index, WORKERS), size=256, ages=ages)


def render(out: Path, spc: dict, *, controls: int = 0, seed: int, ages=PHANTOM_AGES) -> Path:
    """One photo (256 px) per subject of ``spc`` (label -> subjects) and of ``controls`` controls."""
    with ProcessPoolExecutor(WORKERS) as pool:
        list(pool.map(_shard, [(out, spc, controls, seed, ages, i) for i in range(WORKERS)]))
    return finish_phantom_dataset(out, subjects_per_condition=spc, controls=controls, photos_per_subject=1,
                                  seed=seed, ages=ages)
