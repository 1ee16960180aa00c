"""medface expression: facial palsy grading and facial movement measured from photos.

The logic, usable from a script without files::

    from medface.io import read_image
    from medface_expression import grade_photos

    grading = grade_photos({"rest": read_image("rest.jpg"), "smile": read_image("smile.jpg")})
    grading.scores.total, grading.affected_side, grading.measurements["rest"]["right"]["mrd1"]

Measurements after Emotrics (Guarin et al. 2018), scores after the eFACE (Banks et al. 2015):
docs/expression.md. Research software: not a medical device.
"""

from __future__ import annotations

from .grading import Grading, grade_photos
from .photoset import ALIASES, EXPRESSIONS, expression_of, photos_in_folder
from .scoring import Scores, score

__all__ = ["Grading", "grade_photos", "Scores", "score", "EXPRESSIONS", "ALIASES", "expression_of",
           "photos_in_folder"]
