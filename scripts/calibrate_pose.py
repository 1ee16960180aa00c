"""Fit the head-pose gains of medface.face.detect on phantom renders of known pose.

Renders a few phantom subjects at known camera yaw and pitch, reads the raw (gain 1) angles
from the MediaPipe mesh and prints the least-squares gains and pitch offset to put into
medface/face/detect.py. Run: python scripts/calibrate_pose.py
"""

from __future__ import annotations

import numpy as np

import medface.face.detect as D
from medface.phantom import cohort


def main(n_subjects: int = 4) -> None:
    D.YAW_GAIN, D.PITCH_GAIN, D.PITCH_OFFSET_DEG = 1.0, 1.0, 0.0
    det = D.get_detector()
    rows = []
    for member in cohort(n_subjects, seed=11):
        for yaw in (-30, -15, 0, 15, 30):
            for pitch in (-15, 0, 15):
                img = member.photo(camera={"yaw": yaw, "pitch": pitch}, lighting="neutral", hair=False)
                faces = det.detect(img.pixels)
                if faces and faces[0].pose is not None:
                    rows.append((yaw, pitch, faces[0].pose["yaw"], faces[0].pose["pitch"]))
    a = np.array(rows, float)
    yaw_gain = float(a[:, 0] @ a[:, 2] / (a[:, 2] @ a[:, 2]))
    design = np.stack([a[:, 3], -np.ones(len(a))], axis=1)
    (pitch_gain, offset), *_ = np.linalg.lstsq(design, a[:, 1], rcond=None)
    print(f"{len(a)} renders with a mesh out of {n_subjects * 15}")
    print(f"YAW_GAIN = {yaw_gain:.2f}\nPITCH_GAIN = {pitch_gain:.2f}\nPITCH_OFFSET_DEG = {offset:.1f}")
    res_y = a[:, 0] - yaw_gain * a[:, 2]
    res_p = a[:, 1] - (pitch_gain * a[:, 3] - offset)
    print(f"residual SD: yaw {res_y.std():.1f} deg, pitch {res_p.std():.1f} deg")


if __name__ == "__main__":
    main()
