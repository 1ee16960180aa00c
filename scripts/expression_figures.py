"""The pictures of docs/expression.md: landmarks and distances on a real portrait and on the phantom.

The portrait is ../shared/data/faces/astronaut.png (public domain, NASA; see that folder's
README), drawn cropped to the face; the phantom pair is the sample head's frontal photo and a
synthetic one-sided smile (the tests' warp). Run: python scripts/expression_figures.py
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MEDFACE_SHARED_DATA", REPO.parent / "shared" / "data"))
sys.path.insert(0, str(REPO / "benchmarks"))


def main() -> None:
    from expression import _photos

    from medface.io import read_image
    from medface_expression import grade_photos
    from medface_expression.figures import annotated_photo, side_by_side

    images = REPO / "docs" / "images"
    portrait = read_image(SHARED / "faces" / "astronaut.png")
    g = grade_photos({"rest": portrait})
    annotated_photo(portrait, g.landmarks["rest"], g.frames["rest"], g.measurements["rest"],
                    title="astronaut.png (public domain, NASA)").to_pil().save(images / "expression_portrait.png")
    photos = _photos()
    g = grade_photos(photos)
    drawn = [annotated_photo(photos[e], g.landmarks[e], g.frames[e], g.measurements[e], title=f"phantom {e}")
             for e in ("rest", "smile")]
    side_by_side(*drawn).to_pil().save(images / "expression_phantom_rest_smile.png")
    print(f"affected side of the phantom pair: {g.affected_side}")


if __name__ == "__main__":
    main()
