"""Regenerate the pictures of docs/phantom.md (run: .venv/bin/python scripts/phantom_figures.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from medface.phantom import cohort, make_head, mean_subject, sample_subject
from medface.phantom import features as FT
from medface.phantom import tables as TB
from medface.phantom.ct import head_ct
from medface.phantom.photo import render_photo

OUT = Path(__file__).resolve().parents[1] / "docs" / "images"
SKIN = (0.87, 0.68, 0.58)


def _poly(v, f):
    import pyvista as pv

    return pv.PolyData(v, np.hstack([np.full((len(f), 1), 3), f]).ravel())


def _label(img: Image.Image, text: str) -> Image.Image:
    draw = ImageDraw.Draw(img)
    draw.rectangle([0, 0, 8 + 7 * len(text), 18], fill=(255, 255, 255))
    draw.text((4, 3), text, fill=(0, 0, 0))
    return img


def _grid(images: list[Image.Image], cols: int) -> Image.Image:
    w, h = images[0].size
    rows = (len(images) + cols - 1) // cols
    sheet = Image.new("RGB", (cols * w, rows * h), (255, 255, 255))
    for i, im in enumerate(images):
        sheet.paste(im, ((i % cols) * w, (i // cols) * h))
    return sheet


def views_figure(head) -> Image.Image:
    import pyvista as pv

    cr, md, sk = (_poly(*head.meshes[k]) for k in ("cranium", "mandible", "skin"))
    lm = np.array(list(head.landmarks.values()))
    panels = [("skull, frontal", (0, -700, 0), "skull"), ("skull, left lateral", (700, 0, 0), "skull"),
              ("skin, frontal", (0, -700, 0), "skin"), ("skin over skull, three-quarter", (-480, -480, 60), "both")]
    out = []
    for title, pos, what in panels:
        p = pv.Plotter(off_screen=True, window_size=(420, 460))
        p.set_background("white")
        if what in ("skull", "both"):
            p.add_mesh(cr, color="ivory", smooth_shading=True)
            p.add_mesh(md, color="wheat", smooth_shading=True)
        if what == "skin":
            p.add_mesh(sk, color=SKIN, smooth_shading=True, specular=0.2)
        if what == "both":
            p.add_mesh(sk, color=SKIN, opacity=0.3, smooth_shading=True)
            p.add_points(lm, color="red", point_size=7, render_points_as_spheres=True)
        p.camera_position = [pos, (0, -20, -10), (0, 0, 1)]
        out.append(_label(Image.fromarray(p.screenshot(return_img=True)), title))
        p.close()
    return _grid(out, 4)


def ct_figure(head) -> Image.Image:
    ct = head_ct(head, spacing=1.0, seed=0)
    arr = ct.array.astype(float)
    window = np.clip((arr + 300) / 1800, 0, 1) * 255
    ijk = np.round(ct.physical_to_index(np.array([[0.0, -40.0, 0.0]]))[0]).astype(int)
    i0, j0, k0 = ijk[0], ijk[1], ijk[2]
    # radiological display (identity direction): anterior / superior up, the patient's right on
    # the image's left; the sagittal view faces left
    axial = window[k0]
    coronal = window[::-1, j0, :]
    sagittal = window[::-1, :, i0]
    tiles = []
    for name, sl in (("axial (Frankfurt plane)", axial), ("coronal (y = -40 mm)", coronal),
                     ("sagittal (mid-sagittal)", sagittal)):
        im = Image.fromarray(sl.astype(np.uint8)).convert("RGB").resize((360, 360 * sl.shape[0] // sl.shape[1]))
        tiles.append(_label(im, name))
    h = max(t.size[1] for t in tiles)
    sheet = Image.new("RGB", (sum(t.size[0] for t in tiles), h), (0, 0, 0))
    x = 0
    for t in tiles:
        sheet.paste(t, (x, 0))
        x += t.size[0]
    return sheet


def conditions_figure() -> Image.Image:
    fixed = dict(size=(300, 300), skin_tone=3, lighting="neutral", background="light_grey", hair="brown",
                 camera={"yaw": 0.0, "pitch": 0.0, "roll": 0.0})
    tiles = [_label(render_photo(make_head(mean_subject("F")), **fixed).to_pil(), "unaffected")]
    for preset in TB.CONDITIONS:
        subject = sample_subject(np.random.default_rng(11), sex="F", age=40, bmi=24, condition=preset.id,
                                 severity="severe")
        tiles.append(_label(render_photo(make_head(subject), **fixed).to_pil(), preset.id.replace("_", " ")))
    return _grid(tiles, 4)


# features seen best in profile: their measurement lies in the mid-sagittal plane or along it
PROFILE_MEASURES = {"eye_protrusion", "nasal_root_depth", "nasal_tip_angle", "nasal_protrusion", "snb", "sna",
                    "mandibular_body_length", "forehead_inclination", "malar_projection", "cephalic_index",
                    "head_circumference", "philtrum_length"}


def features_figure(strength: float = 3.0) -> Image.Image:
    """The unaffected mean woman, then every feature of the vocabulary at ``strength`` SD, each in
    the view that shows it (frontal, or left profile for sagittal measurements) beside the same
    view of the unaffected face."""
    fixed = dict(size=(240, 240), skin_tone=3, lighting="neutral", background="light_grey", hair="brown",
                 camera={"yaw": 0.0, "pitch": 0.0, "roll": 0.0})
    plain = make_head(mean_subject("F"))
    tiles = [_label(render_photo(plain, view=v, **fixed).to_pil(), f"unaffected, {v}") for v in ("frontal", "left")]
    for feature in FT.FEATURES:
        view = "left" if feature.measure in PROFILE_MEASURES else "frontal"
        head = make_head(mean_subject("F", features={feature.id: strength}))
        tiles.append(_label(render_photo(head, view=view, **fixed).to_pil(), feature.label))
    return _grid(tiles, 6)


def subjects_figure() -> Image.Image:
    tiles = []
    for member in cohort(12, seed=5):
        view = ("frontal", "three_quarter_left", "left")[member.index % 3]
        img = render_photo(member.head, view=view, size=(300, 300), seed=member.index)
        s = member.subject
        tiles.append(_label(img.to_pil(), f"{s.sex}, {s.age:.0f} y, BMI {s.bmi:.0f}"))
    return _grid(tiles, 4)


GROWTH_AGES = (1, 3, 6, 10, 14, 40)


def growth_figure(sex: str = "F") -> Image.Image:
    """The mean subject of ``sex`` at the growth ages: frontal and left photos (each framed to
    its face), and skull and skin in left lateral view at one scale (sizes comparable)."""
    import pyvista as pv

    fixed = dict(size=(220, 220), skin_tone=3, lighting="neutral", background="light_grey", hair="brown",
                 camera={"yaw": 0.0, "pitch": 0.0, "roll": 0.0})
    heads = [make_head(mean_subject(sex, age=a)) for a in GROWTH_AGES]
    rows = [[_label(render_photo(h, view=v, **fixed).to_pil(), f"{a} y, {v}") for a, h in zip(GROWTH_AGES, heads)]
            for v in ("frontal", "left")]
    lateral = []
    for a, h in zip(GROWTH_AGES, heads):
        p = pv.Plotter(off_screen=True, window_size=(220, 220))
        p.set_background("white")
        p.add_mesh(_poly(*h.meshes["cranium"]), color="ivory", smooth_shading=True)
        p.add_mesh(_poly(*h.meshes["mandible"]), color="wheat", smooth_shading=True)
        p.add_mesh(_poly(*h.meshes["skin"]), color=SKIN, opacity=0.25, smooth_shading=True)
        p.enable_parallel_projection()
        p.camera_position = [(700, -10, -10), (0, -10, -10), (0, 0, 1)]
        p.camera.parallel_scale = 150
        lateral.append(_label(Image.fromarray(p.screenshot(return_img=True)), f"{a} y, one scale"))
        p.close()
    return _grid(rows[0] + rows[1] + lateral, len(GROWTH_AGES))


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    head = make_head(mean_subject("F"))
    views_figure(head).save(OUT / "phantom_views.png", optimize=True)
    ct_figure(head).save(OUT / "phantom_ct.png", optimize=True)
    conditions_figure().save(OUT / "phantom_conditions.png", optimize=True)
    features_figure().save(OUT / "phantom_features.png", optimize=True)
    subjects_figure().save(OUT / "phantom_subjects.png", optimize=True)
    growth_figure().save(OUT / "phantom_growth.png", optimize=True)
    print(f"wrote figures to {OUT}")


if __name__ == "__main__":
    main()
