"""`RunContext`: what a command may ask of the core while it runs (seed, output folder, progress),
and what it tells the core back (the models it used, the device it ran on)."""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ..data.provenance import InputRecord, folder_parts, sha256_file, sha256_of_parts
from ..policy import RunOptions
from ..progress import announce_stage, progress_enabled

_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass
class RunContext:
    command: str
    seed: int | None = None
    device: str = "cpu"  # the device asked for (may be "auto"); see record_device for the one used
    out_dir: Path | None = None
    quiet: bool = False
    messages: list[str] = field(default_factory=list)
    stages: list[str] = field(default_factory=list)
    options: RunOptions = field(default_factory=RunOptions)
    models: list[InputRecord] = field(default_factory=list)
    device_used: str | None = None

    @property
    def face_images(self) -> bool:
        """False when the run must leave every face picture out (``--no-face-images``): a command
        may then skip drawing them (the runner does not write them either way)."""
        return self.options.face_images

    def record_model(self, name: str, source=None, *, sha256: str | None = None) -> InputRecord:
        """Record a model (or data) file the command used, for the provenance and the audit log.

        ``source`` is the model's file or folder (hashed here: a folder by the names and contents
        of its files, each file's sha256 listed in ``parts``) and/or ``sha256`` its known hash
        (not recomputed). Returns the record."""
        path = Path(os.fspath(source)) if source is not None else None
        if sha256 is not None and not _SHA256.fullmatch(str(sha256)):
            raise ValueError(f"record_model({name!r}): sha256 must be 64 lowercase hex digits")
        if path is not None and path.exists():
            kind = "folder" if path.is_dir() else "file"
            parts = folder_parts(path) if kind == "folder" else []
            digest = sha256 or (sha256_of_parts(parts) if kind == "folder" else sha256_file(path))
            record = InputRecord(name, str(path.resolve()), digest, kind, file=path.name, parts=parts)
        elif sha256 is not None:
            record = InputRecord(name, None, sha256, "in-memory", file=path.name if path is not None else "")
        else:
            raise ValueError(f"record_model({name!r}): {source!r} does not exist and no sha256 was given")
        if not any(m.name == record.name and m.sha256 == record.sha256 for m in self.models):
            self.models.append(record)
        return record

    def record_device(self, device) -> None:
        """Record the device the command computed on (``"cuda:0"``, ``"cpu"``), never ``"auto"``."""
        self.device_used = str(device)

    def progress(self, iterable, *, total: int | None = None, desc: str = ""):
        """Wrap an iterable in a progress bar on a terminal; a plain iterator otherwise."""
        if self.quiet or not progress_enabled():
            return iterable
        from tqdm.auto import tqdm

        return tqdm(iterable, total=total, desc=desc or self.command, leave=False, file=sys.stderr)

    def stage(self, text: str) -> None:
        """Announce the next stage of a long command (``"registering the template skull"``): a
        line on a terminal's stderr, nothing in scripts and CI; always recorded in ``stages``."""
        self.stages.append(text)
        announce_stage(self.command, len(self.stages), text)
        if not self.quiet and progress_enabled():
            print(f"[{self.command}] {len(self.stages)}. {text}", file=sys.stderr, flush=True)

    def rng(self, offset: int = 0):
        """A numpy Generator seeded from the run's seed (0 when none was given)."""
        import numpy as np

        return np.random.default_rng((self.seed or 0) + offset)

    def log(self, message: str) -> None:
        self.messages.append(message)
        if not self.quiet and os.environ.get("MEDFACE_VERBOSE"):
            print(message, file=sys.stderr)
