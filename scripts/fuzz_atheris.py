"""Coverage-guided fuzzing of one reader with atheris (libFuzzer), for long runs outside CI.

    .venv/bin/pip install "medface[fuzz]"      # atheris 2.3.0 (a wheel for CPython 3.11 on x86-64 Linux)
    .venv/bin/python scripts/fuzz_atheris.py mesh.stl -atheris_runs=100000 -max_total_time=3600

The first argument names a seed of the corpus (tests/fuzzing/seeds.py: ct.nii, ct.nrrd, ct.mha,
mesh.stl, mesh.ply, mesh.obj, mesh.vtp, mesh.vtk, photo.png, points.mrk.json, points.csv,
plan.json, card.json, medface-plugin.toml); the others go to libFuzzer. Each input is written to a
file with the seed's name and read by medface's reader for that file **in this process**, with
reader isolation off, so libFuzzer sees native crashes and their stacks; a MedfaceError is a
normal outcome, anything else is reported as a finding. Crashing inputs land in the current
folder (crash-*); reproduce one with `python -m tests.fuzzing.harness` or by reading the file.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    import atheris

    os.environ["MEDFACE_ISOLATE_READERS"] = "0"  # let libFuzzer see native crashes
    with atheris.instrument_imports():
        from medface.errors import MedfaceError
        from tests.fuzzing import harness
        from tests.fuzzing.seeds import write_seeds

    seed_name, rest = sys.argv[1], sys.argv[1:]
    work = Path(tempfile.mkdtemp(prefix="medface-atheris-"))
    seeds = write_seeds(work / "seeds")
    target = next(t for t in harness.TARGETS if seed_name in t.seeds and not t.folder_seed)
    corpus = work / "corpus"
    corpus.mkdir()
    (corpus / "seed").write_bytes(seeds[seed_name].read_bytes())
    sample = work / seed_name

    def one_input(data: bytes) -> None:
        sample.write_bytes(data)
        try:
            target.call(str(sample))
        except MedfaceError:
            pass

    atheris.Setup([sys.argv[0], *rest[1:], str(corpus)], one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
