"""`Landmarks`: named 3D points in LPS millimetres, ids from one vocabulary."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError


@dataclass(eq=False)
class Landmarks:
    """An ordered set of named points (LPS mm).

    Ids follow :mod:`medface.data.vocabulary` (``n``, ``prn``, ``go_l`` ...); ids outside the
    vocabulary are kept (a lab may have its own) and listed by :meth:`unknown_ids`.
    ``confidence`` optionally holds a value in [0, 1] per id; ``descriptions`` free text.
    """

    ids: list[str]
    points: np.ndarray
    confidence: dict[str, float] = field(default_factory=dict)
    descriptions: dict[str, str] = field(default_factory=dict)
    name: str = ""
    source: str | None = None

    def __post_init__(self):
        self.ids = [str(i) for i in self.ids]
        pts = np.asarray(self.points, dtype=np.float64)
        if pts.size == 0:
            pts = pts.reshape(0, 3)
        if pts.ndim != 2 or pts.shape[1] != 3:
            raise InputError(f"landmark points must be (N, 3), got shape {pts.shape}", path=self.source)
        if len(self.ids) != len(pts):
            raise InputError(f"{len(self.ids)} landmark ids for {len(pts)} points", path=self.source)
        seen: set[str] = set()
        dup = sorted({i for i in self.ids if i in seen or seen.add(i)})  # linear, not ids.count per id
        if dup:
            raise InputError(f"duplicate landmark ids: {', '.join(dup)}", path=self.source)
        empty = [k for k, i in enumerate(self.ids) if not i.strip()]
        if empty:
            raise InputError(f"landmark at position {empty[0]} has an empty id", path=self.source)
        bad = ~np.isfinite(pts).all(axis=1)
        if bad.any():
            raise InputError(
                f"landmark '{self.ids[int(np.argmax(bad))]}' has a NaN or infinite coordinate", path=self.source
            )
        self.points = pts

    @classmethod
    def from_dict(cls, points: Mapping[str, Iterable[float]], **kw) -> "Landmarks":
        ids = list(points)
        return cls(ids, np.array([list(points[i]) for i in ids], dtype=float).reshape(-1, 3), **kw)

    def to_dict(self) -> dict[str, np.ndarray]:
        return {i: self.points[k].copy() for k, i in enumerate(self.ids)}

    def __len__(self) -> int:
        return len(self.ids)

    def __iter__(self) -> Iterator[str]:
        return iter(self.ids)

    def __contains__(self, landmark_id: object) -> bool:
        return landmark_id in self.ids

    def __getitem__(self, landmark_id: str) -> np.ndarray:
        try:
            return self.points[self.ids.index(landmark_id)]
        except ValueError:
            raise KeyError(f"no landmark '{landmark_id}' (have: {', '.join(self.ids)})") from None

    def get(self, landmark_id: str, default=None):
        return self[landmark_id] if landmark_id in self.ids else default

    def subset(self, ids: Iterable[str]) -> "Landmarks":
        ids = [i for i in ids if i in self.ids]
        return Landmarks(ids, np.array([self[i] for i in ids]).reshape(-1, 3),
                         {i: c for i, c in self.confidence.items() if i in ids},
                         {i: d for i, d in self.descriptions.items() if i in ids}, name=self.name)

    def updated(self, other: "Landmarks") -> "Landmarks":
        """A copy where ``other``'s points replace or extend these (a user's file overriding)."""
        merged = self.to_dict()
        merged.update(other.to_dict())
        conf = dict(self.confidence)
        for i in other.ids:
            conf[i] = other.confidence.get(i, 1.0)
        desc = {**self.descriptions, **other.descriptions}
        return Landmarks.from_dict(merged, confidence=conf, descriptions=desc, name=self.name)

    def transformed(self, matrix: np.ndarray) -> "Landmarks":
        m = np.asarray(matrix, float)
        return Landmarks(list(self.ids), self.points @ m[:3, :3].T + m[:3, 3], dict(self.confidence),
                         dict(self.descriptions), name=self.name)

    def unknown_ids(self) -> list[str]:
        from .vocabulary import is_known

        return [i for i in self.ids if not is_known(i)]

    def __repr__(self) -> str:
        shown = ", ".join(self.ids[:6]) + (", ..." if len(self.ids) > 6 else "")
        return f"Landmarks({len(self)} points: {shown})"
