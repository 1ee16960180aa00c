"""The template head every forensic model, registration and metric shares: the phantom's mean
female head (its topology, landmarks and frame). Built once per process."""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=1)
def template_head():
    """The phantom's mean female head (cranium, mandible, skin, landmarks). Shared: do not modify."""
    from medface import phantom

    return phantom.make_head(phantom.mean_subject("F"))
