"""Synthetic anatomical phantom: parametric heads with skull, mandible, skin, landmarks, CT and
photos, population variation and condition presets. Everything it makes is synthetic and
labelled so; see ``docs/phantom.md`` for the anatomy, the sources of every number and its
limits.

::

    from medface import phantom
    head = phantom.make_head(phantom.mean_subject("F"))
    head.skin, head.cranium, head.mandible, head.landmark_set()
    for member in phantom.cohort(100, conditions=["hypertelorism", "micrognathia"], seed=1):
        member.label, member.head.landmarks
"""

from .cohort import UNAFFECTED, CohortMember, cohort
from .expressions import EXPRESSIONS, Palsy, render_expression_set, write_expression_set
from .head import Head, Subject, make_head, mean_subject, sample_subject


def head_ct(head, **kw):
    """CT of a head in HU (see :func:`medface.phantom.ct.head_ct`)."""
    from .ct import head_ct as _head_ct

    return _head_ct(head, **kw)


def render_photo(head, **kw):
    """A rendered colour photo with 2D landmarks (see :func:`medface.phantom.photo.render_photo`)."""
    from .photo import render_photo as _render_photo

    return _render_photo(head, **kw)


__all__ = ["Head", "Subject", "make_head", "mean_subject", "sample_subject", "cohort", "CohortMember",
           "UNAFFECTED", "head_ct", "render_photo", "EXPRESSIONS", "Palsy", "render_expression_set",
           "write_expression_set"]
