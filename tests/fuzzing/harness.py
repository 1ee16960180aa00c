"""The fuzz harness: mutated inputs through every public reader, in worker processes that may die.

For each target (a reader, or a plugin command given one file) the harness writes mutated copies
of the target's seed files and hands them to a long-lived **worker** (a forked child) one at a
time. The worker reports each outcome through a pipe: ``result`` (the reader returned),
``medface`` (a MedfaceError, what a user is meant to get) or ``other`` (any other exception: a
bug). A worker that dies while reading (a segmentation fault, an abort) is a ``crash``; one that
does not answer within the per-input limit is killed and counted as a ``hang``; a MemoryError or
a worker killed at its memory cap (RLIMIT_AS) counts as ``memory``. After a crash or hang a new
worker carries on with the next input.

Run it from the command line (``make fuzz``)::

    python -m tests.fuzzing.harness --inputs 10000 [--targets volume,mesh] [--out fuzz-report.json]

and, a smaller share of it, from the default test suite (``tests/fuzzing/test_fuzz_share.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import random
import select
import signal
import struct
import sys
import tempfile
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.fuzzing import mutators  # noqa: E402
from tests.fuzzing.seeds import write_seeds  # noqa: E402

OUTCOMES = ("result", "medface", "other", "hang", "crash", "memory")
PER_INPUT_S = 20.0
MEMORY_CAP = 3 * 1024 ** 3  # bytes a worker may add to the address space it was forked with


# ----------------------------------------------------------------------------------- targets

def _read(path):
    from medface import io

    return io.read(path)


def _read_plan(path):
    from medface.io import read_plan

    return read_plan(path)


def _read_card(path):
    from medface.runtime.package import read_card

    return read_card(Path(path).parent)


def _read_manifest(path):
    from medface.plugin.manifest import read_manifest

    return read_manifest(path)


def _command(command_id: str, parameter: str):
    def run(path):
        import medface

        with tempfile.TemporaryDirectory() as out:
            return medface.run(command_id, **{parameter: path, "out": out})

    run.__name__ = f"run_{command_id}"
    return run


@dataclass
class Target:
    name: str
    call: object
    seeds: tuple[str, ...]
    #: the mutated file goes into a folder of its own under this name (a DICOM slice, a card)
    folder_seed: str = ""
    inputs_scale: float = 1.0  # share of the input count (plugin commands are slower)


TARGETS = [
    Target("volume: NIfTI", _read, ("ct.nii", "ct.nii.gz")),
    Target("volume: NRRD", _read, ("ct.nrrd",)),
    Target("volume: MetaImage", _read, ("ct.mha", "ct.mhd")),
    Target("volume: DICOM series", _read, ("dicom",), folder_seed="dicom"),
    Target("mesh: STL", _read, ("mesh.stl", "mesh_ascii.stl")),
    Target("mesh: PLY", _read, ("mesh.ply", "mesh_ascii.ply")),
    Target("mesh: OBJ", _read, ("mesh.obj",)),
    Target("mesh: VTP / VTK", _read, ("mesh.vtp", "mesh.vtk", "mesh_ascii.vtk")),
    Target("image: PNG / JPEG", _read, ("photo.png", "photo.jpg")),
    Target("markups: .mrk.json", _read, ("points.mrk.json",)),
    Target("markups: CSV", _read, ("points.csv",)),
    Target("surgery plan", _read_plan, ("plan.json",)),
    Target("model card", _read_card, ("card.json",)),
    Target("plugin manifest", _read_manifest, ("medface-plugin.toml",)),
    Target("surgery inspect-ct", _command("surgery.inspect-ct", "ct"), ("ct.nii.gz", "ct.mha"), inputs_scale=0.2),
    Target("forensic inspect-skull", _command("forensic.inspect-skull", "skull"), ("mesh.stl", "mesh.ply"),
           inputs_scale=0.2),
    Target("phenotype inspect", _command("phenotype.inspect", "image"), ("photo.png", "photo.jpg"),
           inputs_scale=0.2),
]


# ----------------------------------------------------------------------------------- inputs

@dataclass
class Case:
    label: str
    path: Path


def _place(target: Target, seeds: dict, seed_name: str, data: bytes, folder: Path, index: int) -> Path:
    """Write a mutated input where the target reads it; a DICOM mutant is one slice of a copy."""
    case_dir = folder / f"case{index:06d}"
    case_dir.mkdir()
    if target.folder_seed:
        import shutil

        series = case_dir / "series"
        shutil.copytree(seeds[seed_name], series)
        victim = sorted(series.iterdir())[index % len(list(series.iterdir()))]
        victim.write_bytes(data)
        return series
    source = seeds[seed_name]
    path = case_dir / source.name
    path.write_bytes(data)
    companion = source.with_suffix(".raw")
    if source.suffix == ".mhd" and companion.exists():  # keep the header's data file beside it
        (case_dir / companion.name).write_bytes(companion.read_bytes())
    return path


def _seed_bytes(target: Target, seeds: dict, seed_name: str, index: int) -> bytes:
    source = seeds[seed_name]
    if source.is_dir():
        files = sorted(source.iterdir())
        return files[index % len(files)].read_bytes()
    return source.read_bytes()


def special_cases(target: Target, seeds: dict, folder: Path) -> list[Case]:
    """A folder, a symlink loop, a named pipe, an empty file and a gzip bomb, for every target."""
    special = folder / "special"
    special.mkdir(exist_ok=True)
    name = seeds[target.seeds[0]].name if not target.folder_seed else "slice.dcm"
    cases = []
    directory = special / f"dir_{len(os.listdir(special))}_{name}"
    directory.mkdir()
    cases.append(Case("a folder instead of a file", directory))
    loop = special / f"loop_{len(os.listdir(special))}_{name}"
    os.symlink(loop, loop)
    cases.append(Case("a symlink loop", loop))
    if hasattr(os, "mkfifo"):
        pipe = special / f"pipe_{len(os.listdir(special))}_{name}"
        os.mkfifo(pipe)
        cases.append(Case("a named pipe", pipe))
    empty = special / f"empty_{len(os.listdir(special))}_{name}"
    empty.write_bytes(b"")
    cases.append(Case("an empty file", empty))
    bomb = special / f"bomb_{len(os.listdir(special))}_{name}"
    bomb.write_bytes(mutators.gzip_bomb(_seed_bytes(target, seeds, target.seeds[0], 0), random.Random(0)))
    cases.append(Case("a gzip bomb (256 MiB of zeros)", bomb))
    return cases


def mutated_cases(target: Target, seeds: dict, folder: Path, count: int, seed: int = 0):
    """``count`` mutated inputs (generated lazily, written into ``folder``)."""
    rng = random.Random(f"{target.name}:{seed}")
    for index in range(count):
        seed_name = target.seeds[index % len(target.seeds)]
        original = _seed_bytes(target, seeds, seed_name, index)
        label, data = mutators.mutate(original, seeds[seed_name].name if not target.folder_seed else "x.dcm", rng)
        yield Case(f"{seed_name}: {label} (#{index})", _place(target, seeds, seed_name, data, folder, index))


# ----------------------------------------------------------------------------------- the worker

def _classify(exc: BaseException) -> tuple[str, str]:
    from medface.errors import MedfaceError

    if isinstance(exc, MedfaceError):
        return "medface", f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    if isinstance(exc, MemoryError):
        return "memory", "MemoryError"
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
    return "other", f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}{where}"


def _send(fd: int, message) -> None:
    data = pickle.dumps(message)
    os.write(fd, struct.pack("<I", len(data)) + data)


def _worker(call, requests: int, answers: int) -> None:  # pragma: no cover - runs in the child
    import faulthandler
    import resource
    import warnings

    faulthandler.disable()  # a crash is an expected outcome here: the parent reports it
    warnings.simplefilter("ignore")
    from medface.io.isolated import mapped_bytes

    cap = (mapped_bytes() or 0) + MEMORY_CAP
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    with os.fdopen(requests, "rb") as inbox:
        for line in inbox:
            path = line.decode().rstrip("\n")
            try:
                call(path)
                outcome = ("result", "")
            except BaseException as exc:  # noqa: BLE001 - classifying every exception is the point
                outcome = _classify(exc)
            _send(answers, outcome)
    os._exit(0)


class Worker:
    """A forked child that reads the inputs it is sent, one at a time, and answers each."""

    def __init__(self, call):
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:  # pragma: no cover
            os.close(self._to_child)
            os.close(self._from_child)
            sys.stdout.flush()
            _worker(call, to_child_r, from_child_w)
        os.close(to_child_r)
        os.close(from_child_w)

    def ask(self, path: Path, timeout_s: float) -> tuple[str, str]:
        os.write(self._to_child, (str(path) + "\n").encode())
        header = self._read(4, timeout_s)
        if header is None:
            return self._died(timeout_s)
        body = self._read(struct.unpack("<I", header)[0], timeout_s)
        return pickle.loads(body) if body is not None else self._died(timeout_s)

    def _read(self, n: int, timeout_s: float) -> bytes | None:
        data = b""
        deadline = time.monotonic() + timeout_s
        while len(data) < n:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_child], [], [], left)[0]:
                self.timed_out = True
                return None
            block = os.read(self._from_child, n - len(data))
            if not block:
                self.timed_out = False
                return None
            data += block
        return data

    def _died(self, timeout_s: float) -> tuple[str, str]:
        if getattr(self, "timed_out", False):
            self.close()
            return "hang", f"no answer within {timeout_s:g} s"
        status = os.waitpid(self.pid, 0)[1]
        self.pid = 0
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            kind = "memory" if sig == signal.SIGKILL else "crash"
            return kind, f"worker killed by {signal.Signals(sig).name}"
        return "crash", f"worker exited with status {os.WEXITSTATUS(status)}"

    def close(self) -> None:
        for fd in (self._to_child, self._from_child):
            try:
                os.close(fd)
            except OSError:
                pass
        if self.pid:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.waitpid(self.pid, 0)
            self.pid = 0


# ----------------------------------------------------------------------------------- running

@dataclass
class TargetReport:
    target: str
    counts: Counter = field(default_factory=Counter)
    failures: list[dict] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def inputs(self) -> int:
        return sum(self.counts.values())

    @property
    def failed(self) -> int:
        return sum(self.counts[k] for k in ("other", "hang", "crash", "memory"))

    def to_dict(self) -> dict:
        return {"target": self.target, "inputs": self.inputs, **{k: self.counts[k] for k in OUTCOMES},
                "seconds": round(self.seconds, 1), "failures": self.failures[:50]}


def fuzz_target(target: Target, seeds: dict, folder: Path, count: int, *, seed: int = 0,
                timeout_s: float = PER_INPUT_S) -> TargetReport:
    """Run ``count`` mutated inputs and the special cases through ``target``."""
    report = TargetReport(target.name)
    started = time.perf_counter()
    worker = Worker(target.call)
    work = folder / target.name.replace(" ", "_").replace(":", "").replace("/", "")
    work.mkdir(parents=True, exist_ok=True)
    cases = [*special_cases(target, seeds, work), *mutated_cases(target, seeds, work, count, seed)]
    for case in cases:
        kind, detail = worker.ask(case.path, timeout_s)
        report.counts[kind] += 1
        if kind in ("other", "hang", "crash", "memory"):
            report.failures.append({"case": case.label, "outcome": kind, "detail": detail})
            if worker.pid == 0 or kind == "hang":
                worker.close()
                worker = Worker(target.call)
        _remove(case.path)
    worker.close()
    report.seconds = time.perf_counter() - started
    return report


def _remove(path: Path) -> None:
    import shutil

    holder = path.parent
    if holder.name.startswith("case"):
        shutil.rmtree(holder, ignore_errors=True)


def run(count: int, names: list[str] | None = None, *, seed: int = 0, folder: Path | None = None,
        timeout_s: float = PER_INPUT_S) -> list[TargetReport]:
    with tempfile.TemporaryDirectory(prefix="medface-fuzz-") as tmp:
        folder = Path(folder or tmp)
        seeds = write_seeds(folder / "seeds")
        chosen = [t for t in TARGETS if not names or any(n.lower() in t.name.lower() for n in names)]
        return [fuzz_target(t, seeds, folder / "work", max(1, round(count * t.inputs_scale)), seed=seed,
                            timeout_s=timeout_s) for t in chosen]


def table(reports: list[TargetReport]) -> str:
    rows = ["| reader | inputs | results | MedfaceErrors | other exceptions | hangs | crashes | memory | s |",
            "|---|---|---|---|---|---|---|---|---|"]
    for r in reports:
        c = r.counts
        rows.append(f"| {r.target} | {r.inputs:,} | {c['result']:,} | {c['medface']:,} | {c['other']} | {c['hang']} "
                    f"| {c['crash']} | {c['memory']} | {r.seconds:.0f} |")
    return "\n".join(rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="fuzz medface's readers and inspect commands")
    parser.add_argument("--inputs", type=int, default=10_000, help="mutated inputs per reader (default 10000)")
    parser.add_argument("--targets", default="", help="comma-separated parts of target names (default: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=PER_INPUT_S, help="seconds per input")
    parser.add_argument("--out", default="", help="write the full report (JSON) here")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.targets.split(",") if n.strip()]
    reports = []
    for target in [t for t in TARGETS if not names or any(n.lower() in t.name.lower() for n in names)]:
        reports += run(args.inputs, [target.name], seed=args.seed, timeout_s=args.timeout)
        print(table(reports[-1:]).splitlines()[-1], flush=True)
    print()
    print(table(reports))
    for r in reports:
        for f in r.failures[:10]:
            print(f"  {r.target}: {f['outcome']}: {f['case']}: {f['detail']}")
    if args.out:
        Path(args.out).write_text(json.dumps([r.to_dict() for r in reports], indent=2), encoding="utf-8")
    bad = sum(r.failed for r in reports)
    print(f"inputs={sum(r.inputs for r in reports)} failures={bad}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
