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
from .head import Head, Subject, make_head, mean_subject, sample_subject

__all__ = ["Head", "Subject", "make_head", "mean_subject", "sample_subject", "cohort", "CohortMember",
           "UNAFFECTED"]
