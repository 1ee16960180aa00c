"""What listing plugins needs from a manifest, without validating it again on every start-up.

Validating a manifest takes the pydantic model (:mod:`medface.plugin.manifest`), whose import
and schema build cost about 150 ms: most of what `medface plugins list` would spend. So a
manifest that validated once is remembered, by the sha256 of its bytes, of the model's and this
module's source and of medface's version, as a :class:`ManifestSummary` in the cache
(:mod:`medface.cache`); the next scan reads the summary and imports no pydantic. The summary is always made *from the validated model*
(:meth:`Manifest.summary`), never from the raw TOML, so the two cannot disagree; the full model
is built on first use (running a command, `plugins info`). An edited manifest has another hash
and is validated again; an invalid one is never cached, so its problems are reported every time.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from .. import cache
from ..version import __version__

MANIFEST_NAME = "medface-plugin.toml"
_NAMESPACE = "manifests"
_MODEL_SOURCE = Path(__file__).with_name("manifest.py")
#: entries kept (the newest); older ones are what earlier versions or deleted plugins left
MAX_ENTRIES = 200


@dataclass(frozen=True)
class CommandSummary:
    id: str
    heading: str
    python_name: str


@dataclass(frozen=True)
class PanelSummary:
    """A panel's listing fields; its logic class is checked statically at every scan, like a command."""

    id: str
    heading: str
    python_name: str


@dataclass(frozen=True)
class ManifestSummary:
    """A validated manifest's listing fields: name, title, version, category, requirements,
    commands and panels (none in a summary remembered before panels existed)."""

    name: str
    title: str
    version: str
    category: str
    help: str
    requirements: tuple[str, ...]
    selftest: str | None
    commands: tuple[CommandSummary, ...]
    panels: tuple[PanelSummary, ...] = ()

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, doc: dict) -> "ManifestSummary":
        return cls(**{**doc, "requirements": tuple(doc["requirements"]),
                      "commands": tuple(CommandSummary(**c) for c in doc["commands"]),
                      "panels": tuple(PanelSummary(**p) for p in doc.get("panels", ()))})


def _entry(data: bytes) -> Path:
    """Content-addressed: the same manifest bytes validated by the same model have one entry."""
    return cache.folder(_NAMESPACE) / f"{cache.key(data, _MODEL_SOURCE, Path(__file__), __version__)}.json"


def _keep_newest(folder: Path, count: int = MAX_ENTRIES) -> None:
    entries = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in entries[count:]:
        old.unlink(missing_ok=True)


def _remembered(entry: Path) -> ManifestSummary | None:
    try:
        return ManifestSummary.from_dict(json.loads(entry.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError, KeyError):
        return None


def _remember(entry: Path, summary: ManifestSummary) -> None:
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        tmp = entry.with_name(f"{entry.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(summary.to_dict()), encoding="utf-8")
        os.replace(tmp, entry)
        _keep_newest(entry.parent)
    except OSError:
        pass  # a cache is an optimisation: a read-only disk makes listing slower, never wrong


def summarise_manifest(path) -> tuple[ManifestSummary, object | None]:
    """The summary of the manifest at ``path``, and the validated :class:`Manifest` when this call
    had to validate it (``None`` when the summary came from the cache). Raises ManifestError."""
    path = Path(path)
    try:
        data = path.read_bytes() if path.is_file() else None  # a pipe or device: read_manifest refuses it
    except OSError:
        data = None
    entry = _entry(data) if data is not None else None
    summary = _remembered(entry) if entry is not None else None
    if summary is not None:
        return summary, None
    from .manifest import read_manifest

    manifest = read_manifest(path)
    summary = manifest.summary()
    if entry is not None:
        _remember(entry, summary)
    return summary, manifest
