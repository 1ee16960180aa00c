"""`RunContext`: what a command may ask of the core while it runs (seed, output folder, progress)."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ..progress import progress_enabled


@dataclass
class RunContext:
    command: str
    seed: int | None = None
    device: str = "cpu"
    out_dir: Path | None = None
    quiet: bool = False
    messages: list[str] = field(default_factory=list)
    stages: list[str] = field(default_factory=list)

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
