"""Which MediaPipe Face Mesh point means what: the indices every measurement reads.

Indices are those of MediaPipe's canonical face model (468 mesh points; with iris refinement
468-472 are the subject's right iris, 473-477 the left, centre first, then four points on the
iris edge). "Right" and "left" are the subject's: in a frontal photo the subject's right side is
on the image's left. Contours run from the lateral to the medial end (eyes, brows) or from the
commissure to the midline (lips).
"""

from __future__ import annotations

SIDES = ("right", "left")

#: canthi (lateral, medial) of each eye: the eye centre (their midpoint) does not move with gaze
#: or closed lids, so the face's horizontal and the scale of every photo are taken from it
CANTHI = {"right": (33, 133), "left": (263, 362)}
#: iris centre (pupil) and the four iris-edge points
IRIS_CENTRE = {"right": 468, "left": 473}
IRIS_EDGE = {"right": (469, 470, 471, 472), "left": (474, 475, 476, 477)}
#: upper and lower lid margins, lateral canthus to medial canthus
UPPER_LID = {"right": (33, 246, 161, 160, 159, 158, 157, 173, 133),
             "left": (263, 466, 388, 387, 386, 385, 384, 398, 362)}
LOWER_LID = {"right": (33, 7, 163, 144, 145, 153, 154, 155, 133),
             "left": (263, 249, 390, 373, 374, 380, 381, 382, 362)}
#: upper edge of the eyebrow, lateral to medial (brow height is its highest point)
BROW_UPPER = {"right": (70, 63, 105, 66, 107), "left": (300, 293, 334, 296, 336)}
#: oral commissure (cheilion)
COMMISSURE = {"right": 61, "left": 291}
#: upper-lip vermilion border halfway between commissure and philtrum (upper-lip movement), and the
#: lower-lip vermilion border halfway between commissure and midline (lower-lip movement)
UPPER_LIP = {"right": 39, "left": 269}
LOWER_LIP = {"right": 181, "left": 405}
#: the outer lower-lip contour (vermilion border with the skin), commissure to midline: the column
#: halfway along it is where the lower lip's border is searched in the photo (lipborder.py)
OUTER_LOWER_LIP = {"right": (61, 146, 91, 181, 84, 17), "left": (291, 375, 321, 405, 314, 17)}
#: the lower-lip vermilion border at the midline: the reference of commissure excursion and smile angle
LOWER_LIP_MIDPOINT = 17
UPPER_LIP_MIDPOINT = 0
#: inner lip margins (commissure to commissure through the midline), which bound the mouth opening
INNER_UPPER_LIP = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
INNER_LOWER_LIP = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)
#: nasion-ish (mid-brow) and menton, drawn as the facial midline in the pictures
MIDLINE = (168, 152)

#: every index drawn on the annotated photos
DRAWN = sorted({*[i for s in SIDES for i in (*CANTHI[s], IRIS_CENTRE[s], *UPPER_LID[s], *LOWER_LID[s],
                                            *BROW_UPPER[s], COMMISSURE[s], UPPER_LIP[s], LOWER_LIP[s])],
                LOWER_LIP_MIDPOINT, UPPER_LIP_MIDPOINT})
