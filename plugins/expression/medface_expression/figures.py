"""The expression plugin's pictures, drawn into arrays (the runner writes them as PNG).

- :func:`annotated_photo`: a photo with the landmarks used and the measured distances drawn:
  eye line and midline (yellow), brow heights (green), MRD1 / MRD2 (cyan / magenta),
  commissure excursion (orange), labels in the report's units.
- :func:`side_bars`: a bar chart of every measurement of one photo, right beside left.
- :func:`side_by_side`: two annotated photos next to each other (rest and smile).
"""

from __future__ import annotations

import numpy as np

from medface.data import FaceImage

from . import landmarks as L

COLOURS = {"frame": (255, 220, 0), "brow": (60, 220, 60), "mrd1": (0, 220, 255), "mrd2": (255, 60, 220),
           "commissure": (255, 140, 0), "points": (255, 40, 40)}


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # pragma: no cover - Pillow < 10.1
        return ImageFont.load_default()


def _segment(draw, frame, a_uv, b_uv, colour, width):
    a, b = frame.to_image(np.array(a_uv)), frame.to_image(np.array(b_uv))
    draw.line([tuple(a), tuple(b)], fill=colour, width=width)
    return b


def _distances(draw, mesh, frame, measured, unit, style):
    """Brow height, MRD1 / MRD2 and commissure excursion of both sides, with labels (``measured``
    in the report's units, ``k`` mm each)."""
    width, font, k = style
    f = frame.to_face(mesh)
    for side in L.SIDES:
        m = measured[side]
        mm = {name: k * m[name] for name in ("brow_height", "mrd1", "mrd2")}
        pupil = f[L.IRIS_CENTRE[side]]
        brow_u = f[list(L.BROW_UPPER[side])][np.argmin(f[list(L.BROW_UPPER[side]), 1]), 0]
        top = _segment(draw, frame, (brow_u, 0.0), (brow_u, -mm["brow_height"]), COLOURS["brow"], width)
        draw.text(tuple(top + (-4 * width, -6 * width)), f"{m['brow_height']:.1f}", fill=COLOURS["brow"], font=font)
        _segment(draw, frame, pupil, (pupil[0], pupil[1] - mm["mrd1"]), COLOURS["mrd1"], width)
        _segment(draw, frame, pupil, (pupil[0], pupil[1] + mm["mrd2"]), COLOURS["mrd2"], width)
        c = _segment(draw, frame, f[L.LOWER_LIP_MIDPOINT], f[L.COMMISSURE[side]], COLOURS["commissure"], width)
        shift = -14 * width if side == "right" else 2 * width
        draw.text(tuple(c + (shift, 2 * width)), f"{m['commissure_excursion']:.1f}", fill=COLOURS["commissure"],
                  font=font)
    draw.text((4 * width, 4 * width), f"distances in {unit}: brow height (green), MRD1 (cyan), MRD2 (magenta), "
              "commissure excursion (orange)", fill=COLOURS["frame"], font=font)


#: an annotated face is drawn at least this many pixels high
MIN_FACE_PX = 640


def _face_crop(image: FaceImage, mesh: np.ndarray, frame):
    """The photo cropped to the face landmarks (a quarter of their box as margin), enlarged to
    :data:`MIN_FACE_PX` high when smaller, with the landmarks and the frame moved along."""
    from PIL import Image

    from .measure import FaceFrame

    lo, hi = mesh.min(axis=0), mesh.max(axis=0)
    margin = 0.25 * (hi - lo)
    x0, y0 = np.maximum(np.floor(lo - margin), 0).astype(int)
    x1, y1 = np.minimum(np.ceil(hi + margin), [image.width, image.height]).astype(int)
    k = max(1.0, MIN_FACE_PX / max(y1 - y0, 1))
    pil = image.to_pil().crop((x0, y0, x1, y1))
    pil = pil.resize((round(pil.width * k), round(pil.height * k)), Image.Resampling.LANCZOS)
    offset = np.array([x0, y0], float)
    moved = FaceFrame((frame.origin - offset) * k, frame.u, frame.v, frame.px_per_mm * k)
    return pil, (mesh - offset) * k, moved


def annotated_photo(image: FaceImage, mesh: np.ndarray, frame, measured: dict, mm_per_unit: float = 1.0,
                    unit: str = "mm", title: str = "") -> FaceImage:
    """The face of the photo (cropped to the landmarks with a margin, enlarged to at least
    :data:`MIN_FACE_PX` high) with the measured landmarks and distances drawn on it (``measured``
    in ``unit``, each ``mm_per_unit`` mm)."""
    from PIL import ImageDraw

    pil, mesh, frame = _face_crop(image, mesh, frame)
    draw = ImageDraw.Draw(pil)
    width = max(1, round(max(pil.width, pil.height) / 500))
    font = _font(max(10, 6 * width + 4))
    scale = frame.px_per_mm
    eye_half = np.linalg.norm(mesh[L.CANTHI["left"][0]] - mesh[L.CANTHI["right"][0]]) / scale * 0.6
    _segment(draw, frame, (-eye_half, 0.0), (eye_half, 0.0), COLOURS["frame"], width)
    chin = frame.to_face(mesh[L.MIDLINE[1]])
    _segment(draw, frame, (0.0, -eye_half * 0.8), (0.0, chin[1]), COLOURS["frame"], width)
    _distances(draw, mesh, frame, measured, unit, (width, font, mm_per_unit))
    r = 1.2 * width
    for x, y in mesh[L.DRAWN]:
        draw.ellipse([x - r, y - r, x + r, y + r], fill=COLOURS["points"])
    if title:
        draw.text((4 * width, pil.height - 12 * width - 8), title, fill=COLOURS["frame"], font=font)
    return FaceImage(np.asarray(pil), source=image.source)


def side_by_side(left: FaceImage, right: FaceImage) -> FaceImage:
    """Two pictures next to each other, the second scaled to the height of the first."""
    from PIL import Image

    a, b = left.to_pil(), right.to_pil()
    if b.height != a.height:
        b = b.resize((round(b.width * a.height / b.height), a.height), Image.Resampling.BILINEAR)
    out = Image.new("RGB", (a.width + b.width + 8, a.height), (255, 255, 255))
    out.paste(a, (0, 0))
    out.paste(b, (a.width + 8, 0))
    return FaceImage(np.asarray(out))


def _canvas(size=(9.0, 4.5)):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=100)
    return fig, FigureCanvasAgg(fig)


def _pixels(fig, canvas) -> FaceImage:
    canvas.draw()
    return FaceImage(np.asarray(canvas.buffer_rgba())[..., :3].copy())


def side_bars(measured: dict, expression: str, unit: str = "mm") -> FaceImage:
    """Bar chart of one photo's measurements, subject's right beside left (units in the labels)."""
    from .measure import MEASURES, UNITS

    names = [n for n in MEASURES if n not in ("dental_show", "lower_lip_border_drop")]
    fig, canvas = _canvas()
    ax = fig.add_subplot(1, 1, 1)
    x = np.arange(len(names))
    for k, side in enumerate(L.SIDES):
        ax.bar(x + (k - 0.5) * 0.4, [measured[side][n] for n in names], 0.4, label=f"subject's {side}")
    ax.set_xticks(x, [f"{n}\n({UNITS.get(n, unit)})" for n in names], rotation=40, ha="right", fontsize=7)
    ax.set_title(f"{expression}: measurements per side")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _pixels(fig, canvas)


def movement_bars(moved: dict, unit: str = "mm") -> FaceImage:
    """Bar chart of the movement from rest of each expression photo, per side."""
    names = list(moved)
    fig, canvas = _canvas((7.0, 4.0))
    ax = fig.add_subplot(1, 1, 1)
    x = np.arange(len(names))
    for k, side in enumerate(L.SIDES):
        ax.bar(x + (k - 0.5) * 0.4, [moved[n][side] for n in names], 0.4, label=f"subject's {side}")
    ax.set_xticks(x, names, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(f"movement from rest ({unit}; eye closure: fraction of the fissure)", fontsize=8)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _pixels(fig, canvas)
