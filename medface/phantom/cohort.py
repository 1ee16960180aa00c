"""Cohorts: reproducible streams of synthetic subjects, healthy or with condition presets."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from ..errors import ParameterError
from . import tables as TB
from .head import DEFAULT_AGES, Head, Subject, make_head, sample_subject

UNAFFECTED = "unaffected"


@dataclass
class CohortMember:
    """One subject of a cohort; meshes, CT and photos are made on first use."""

    index: int
    subject: Subject
    seed: int
    _extras: dict = field(default_factory=dict, repr=False)

    @property
    def label(self) -> str:
        return self.subject.condition or UNAFFECTED

    @cached_property
    def head(self) -> Head:
        return make_head(self.subject)

    @property
    def landmarks(self) -> dict:
        return self.head.landmarks

    def ct(self, **kw):
        from .ct import head_ct

        kw.setdefault("seed", self.seed)
        return head_ct(self.head, **kw)

    def photo(self, view: str = "frontal", **kw):
        from .photo import render_photo

        kw.setdefault("seed", self.seed)
        return render_photo(self.head, view=view, **kw)


def cohort(n: int, *, conditions: Sequence[str] | dict | None = None, severities: Sequence[str] = TB.SEVERITIES,
           unaffected_fraction: float | None = None, sex: str | None = None, age: float | None = None,
           bmi: float | None = None, seed: int = 0, ages: tuple[float, float] | None = None) -> Iterator[CohortMember]:
    """Yield ``n`` subjects lazily (nothing is meshed until ``member.head`` is used).

    ``conditions`` is a list of preset ids (drawn with equal probability) or a dict of id to
    probability; ``unaffected_fraction`` of the subjects carry no condition (default: an equal
    share with each condition when conditions are given, else all). Severities are drawn
    uniformly from ``severities``. Without ``age``, ages are uniform over ``ages`` (years; 20-75
    by default, children under 18 through :mod:`medface.phantom.growth`). Member ``i`` depends
    only on ``(seed, i)``, so a cohort can be resumed or split across workers.
    """
    if not isinstance(n, (int, np.integer)) or n < 0:
        raise ParameterError(f"cohort size must be a non-negative integer, got {n!r}", parameter="n")
    if isinstance(conditions, dict):
        names, probs = list(conditions), np.array(list(conditions.values()), float)
    else:
        names = list(conditions or [])
        probs = np.full(len(names), 1.0 / max(len(names), 1))
    for name in names:
        try:
            TB.condition(name)
        except ParameterError:
            known = ", ".join(c.id for c in TB.CONDITIONS)
            raise ParameterError(f"unknown condition {name!r}; known: {known}", parameter="conditions") from None
    bad = [s for s in severities if s not in TB.SEVERITIES]
    if bad or not severities:
        raise ParameterError(f"severities must be among {', '.join(TB.SEVERITIES)}, got {list(severities)}",
                             parameter="severities")
    if names:
        if np.any(probs < 0) or probs.sum() <= 0:
            raise ParameterError("condition probabilities must be non-negative and not all zero",
                                 parameter="conditions")
        unaffected = 1.0 / (len(names) + 1) if unaffected_fraction is None else float(unaffected_fraction)
        if not 0 <= unaffected <= 1:
            raise ParameterError(f"unaffected_fraction must lie in 0..1, got {unaffected}",
                                 parameter="unaffected_fraction")
        probs = probs / probs.sum() * (1 - unaffected)
    else:
        unaffected = 1.0
    root = np.random.SeedSequence(seed)
    for i, child in enumerate(root.spawn(int(n))):
        rng = np.random.default_rng(child)
        member_seed = int(child.generate_state(1)[0])
        draw = rng.random()
        condition = None
        if draw >= unaffected and names:
            condition = names[int(np.searchsorted(np.cumsum(probs), draw - unaffected, side="right").clip(0, len(names) - 1))]
        severity = severities[int(rng.integers(len(severities)))] if condition else "moderate"
        subject = sample_subject(rng, sex=sex, age=age, bmi=bmi, condition=condition, severity=severity,
                                 subject_id=f"s{seed}-{i:05d}", ages=ages or DEFAULT_AGES)
        yield CohortMember(i, subject, member_seed)
