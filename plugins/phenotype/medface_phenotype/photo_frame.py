"""What screening found, put back on the photo as it was given: for the workstation's slice view.

Detection and alignment work on the photo turned upright (``np.rot90(pixels, turns)``) and the
attention map lies on the aligned MODEL_SIZE crop (``matrix``: upright photo -> crop pixels).
These functions undo both, so the face's box and five points and the attention map line up
with the original photo's pixels, placed in a scene by :func:`medface.data.image.photo_ijk_to_lps`
(a viewer that shows the photo there shows them over it).

Pixel positions follow :attr:`medface.data.FaceImage.landmarks_2d`: x to the right, y down,
origin at the top-left pixel's corner.
"""

from __future__ import annotations

import numpy as np

from medface.data import Landmarks
from medface.data.image import photo_plane_volume, photo_points_to_lps

BOX_CORNERS = ("box_top_left", "box_top_right", "box_bottom_right", "box_bottom_left")


def unturned_points(points_xy: np.ndarray, turns: int, width: int, height: int) -> np.ndarray:
    """Positions on ``np.rot90(photo, turns)`` as positions on the ``width`` x ``height`` photo."""
    xy = np.asarray(points_xy, dtype=np.float64).reshape(-1, 2).copy()
    for step in range(turns % 4, 0, -1):
        # one quarter turn back: the picture before it is as wide as the photo after an even number of turns
        before_width = width if (step - 1) % 2 == 0 else height
        xy = np.column_stack([before_width - xy[:, 1], xy[:, 0]])
    return xy


def face_points_on_photo(found, width: int, height: int) -> Landmarks | None:
    """The screened face's five points and box corners on the photo (LPS mm on its plane), or None."""
    from medface.face.detect import FIVE_POINTS

    face = found.face
    if face is None:
        return None
    x0, y0, x1, y1 = (float(v) for v in face.box)
    names = [f"face_{n}" for n in FIVE_POINTS] + list(BOX_CORNERS)
    upright = np.vstack([np.asarray(face.points5, dtype=np.float64).reshape(-1, 2),
                         [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]])
    on_photo = unturned_points(upright, found.turns, width, height)
    return Landmarks(names, photo_points_to_lps(on_photo, width, height), name="detected face")


def attention_on_photo(found, width: int, height: int):
    """The attention map (0-1) on the photo's pixels as a one-slice Volume on the photo's grid
    (0 outside the aligned crop), or None without a map."""
    import cv2

    if found.attention is None or found.matrix is None:
        return None
    upright_w, upright_h = (width, height) if found.turns % 2 == 0 else (height, width)
    upright = cv2.warpAffine(np.asarray(found.attention, dtype=np.float32), np.asarray(found.matrix, np.float64),
                             (upright_w, upright_h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                             borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
    return photo_plane_volume(np.ascontiguousarray(np.rot90(upright, -found.turns)),
                              source=f"attention ({found.attention_condition})")

