"""Can this CT be segmented, and what does it cover? Checks with messages that say what to do.

Used by :func:`medface.anatomy.ct_segmentation.segment_ct` (and ``surgery inspect-ct``, which
reports the same grid figures):

- **Grid** (:func:`coverage`, :func:`check_grid`): a volume needs at least
  :data:`MIN_SLICES` voxels along every axis (a single slice or two is an image, not a head
  volume: a 3-D opening of one voxel erases it, and no surface closes around it). Spacings above
  :data:`COARSE_SPACING_MM` are accepted with a warning (staircase surfaces, thin bone lost).
- **Size** (:func:`check_body_size`): the body's bounding box in mm against human heads. The
  assumption, from head anthropometry: a head is at least 80 mm across in its longest direction
  (a preterm newborn's head is about 85 mm long) and adult heads are 140-220 mm; so a body under
  :data:`MIN_BODY_MM` (60 mm) across in every direction means the spacing is not in mm (a
  spacing in cm makes a 200 mm head 20 mm). The second-largest extent is at most the scanner
  bore (under 900 mm); above :data:`MAX_BODY_MM` (1000 mm) the spacing is not in mm either.
- **Air around the body** (:func:`check_air_around`): a head CT has air around the head; a body
  that fills 90 % or more of the field of view is a crop inside the head or one material only.
- **Scanner table** (:func:`find_table`, :func:`remove_table`): a table is flat, and nothing in
  a head is: on a grid of about :data:`TABLE_GRID_MM`, the body's voxels are counted in 4 mm
  layers across each of 600 directions (then 1-degree steps around the best); a layer holding
  at least :data:`SHEET_AREA_MM2` (100 cm2) of body and :data:`SHEET_CONTRAST` (3) times more
  than every layer 12-24 mm away on both sides is a sheet (a head's sections change smoothly:
  the occiput 12-24 mm in from its tip is about 100 cm2, a table across a 250 mm field 500 cm2 or
  more); grown to the neighbouring layers holding 30 % of it (up to 60 mm) and at least 100 mm
  wide in both directions across, it is the table (or a head holder plate) and every body voxel
  in it is removed, where the head touches it too. A dry skull is a thin shell, so a test
  on thickness (an opening) would not part it from the table; flatness does.
- **Soft tissue** (:func:`soft_tissue_warning`): in a head, soft tissue covers the skull
  (3-10 mm on the scalp and face, more on the neck), so the body's outer voxels are skin: on the
  phantom and headsq at 1.5-6 mm voxels at most 14 % of them reach the bone threshold (partial
  volume at coarse voxels), on a dry skull 55-100 %. Above :data:`BARE_BONE_SHARE` (40 %) there
  is no soft tissue (a dry skull, or a bone-only scan) and the "skin" is the bone's surface.
- **Cut head** (:func:`cut_warnings`): the body running into an end of the field of view (the
  top, the face, the back, a side) is cut there; at the bottom the neck always continues, so
  the chin counts as cut only when the kept bone reaches the bottom slice within
  :data:`CHIN_FRONT_MM` of the body's front (the mandible or maxilla; the cervical spine lies
  50 mm or more behind the throat).
"""

from __future__ import annotations

import numpy as np

from medface.data import Volume
from medface.errors import InputError

MIN_SLICES = 3
COARSE_SPACING_MM = 3.0
MIN_BODY_MM = 60.0
MAX_BODY_MM = 1000.0
AIR_AROUND_SHARE = 0.9
TABLE_GRID_MM = 4.0
SHEET_CONTRAST = 3.0
SHEET_AREA_MM2 = 10_000.0
BARE_BONE_SHARE = 0.4
CHIN_FRONT_MM = 30.0
CUT_AREA_MM2 = 400.0  # a body section at an end of the field of view of at least 4 cm2 ...
CUT_AREA_SHARE = 0.05  # ... and 5 % of the body's largest section across that axis is a cut
_AXIS = "ijk"
_END_NAMES = {(0, 1): "left", (0, -1): "right", (1, 1): "back", (1, -1): "front", (2, 1): "top", (2, -1): "bottom"}
_MISSING = {"top": "the top of the head (vertex) is missing", "front": "the face or nose beyond it is missing",
            "back": "the back of the head beyond it is missing",
            "left": "what lies beyond it (the side of the head, an ear or a shoulder) is missing",
            "right": "what lies beyond it (the side of the head, an ear or a shoulder) is missing"}


def coverage(volume: Volume) -> dict:
    """Voxels and extent (mm) along i, j, k, and the thinnest axis: its voxel count (``slices``)
    and thickness in mm (voxels x spacing). ``surgery inspect-ct`` reports these figures and the
    segmentation refuses a volume with fewer than :data:`MIN_SLICES` slices along any axis."""
    shape = volume.shape_ijk
    extent = [float(n * s) for n, s in zip(shape, volume.spacing)]
    thin = int(np.argmin(shape))
    return {"voxels_ijk": list(shape), "extent_mm": [round(e, 3) for e in extent], "thinnest_axis": _AXIS[thin],
            "slices": int(shape[thin]), "thickness_mm": round(extent[thin], 3),
            "is_volume": bool(min(shape) >= MIN_SLICES)}


def check_grid(volume: Volume) -> list[str]:
    """Refuse a volume thinner than :data:`MIN_SLICES` voxels along an axis; warnings for
    coarse spacing."""
    c = coverage(volume)
    if not c["is_volume"]:
        n = c["slices"]
        raise InputError(
            f"the CT is {n} slice{'s' if n > 1 else ''} thick ({c['thickness_mm']:g} mm along {c['thinnest_axis']}): "
            f"segmentation needs a volume of at least {MIN_SLICES} slices that covers the head; one or two slices "
            "give no bone or skin surface", hint="give the whole series: the DICOM folder with all its slices, or "
                                                 "a 3-D NIfTI, NRRD or MHA file of the head")
    coarse = [f"{s:g} mm along {a}" for s, a in zip(volume.spacing, _AXIS) if s > COARSE_SPACING_MM]
    if coarse:
        return [f"coarse voxels ({', '.join(coarse)}): the surfaces follow the voxel steps along "
                f"{'that axis' if len(coarse) == 1 else 'those axes'} and bone thinner than a voxel (orbital floor, "
                "maxillary walls) is lost; a CT with slices of 1.5 mm or less gives usable surfaces"]
    return []


def body_extent_mm(body: np.ndarray, spacing) -> np.ndarray:
    """Size (mm) of the body's bounding box along i, j, k (voxel edges)."""
    idx = [np.flatnonzero(body.any(axis=tuple(a for a in range(3) if a != np_axis))) for np_axis in range(3)]
    ext_kji = np.array([(i[-1] - i[0] + 1) if i.size else 0 for i in idx], float)
    return ext_kji[::-1] * np.asarray(spacing, float)


def check_body_size(body: np.ndarray, spacing) -> None:
    """Refuse a body far smaller or larger than a human head: the spacing is not in mm."""
    ext = np.sort(body_extent_mm(body, spacing))
    sp = " x ".join(f"{s:g}" for s in spacing)
    if ext[-1] < MIN_BODY_MM:
        raise InputError(
            f"the head is {ext[-1] / 10:.1f} cm wide at most ({ext[-1]:.0f} mm with the file's voxel spacing {sp}): "
            f"a human head is {MIN_BODY_MM + 20:.0f} mm or more across: is the spacing in cm? medface needs mm",
            hint="fix the voxel spacing in the file: in mm, a spacing in cm is 10 times larger; or re-export the CT")
    if ext[-2] > MAX_BODY_MM:
        raise InputError(
            f"the body is {ext[-2]:.0f} x {ext[-1]:.0f} mm across with the file's voxel spacing {sp}: wider than "
            "any CT scanner's field of view (under 900 mm): is the spacing in mm?",
            hint="fix the voxel spacing in the file, in mm, or re-export the CT")


def check_air_around(body: np.ndarray, skin_hu: float) -> None:
    """Refuse a body that fills the field of view: no air around it to tell skin from."""
    share = float(body.mean())
    if share >= AIR_AROUND_SHARE:
        raise InputError(
            f"{share:.0%} of the field of view is above the skin threshold {skin_hu:.0f} HU: there is no air around "
            "a head (the CT shows one material only, such as bone or soft tissue, or a field of view inside the head)",
            hint="give a CT whose field of view holds the whole head and the air around it, or check skin_hu")


def _coarse(mask: np.ndarray, spacing, step_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """Every n-th voxel (a grid of about ``step_mm``) and the steps (i, j, k)."""
    steps = np.array([max(1, round(step_mm / s)) for s in spacing])
    return mask[:: steps[2], :: steps[1], :: steps[0]], steps


def _hemisphere(n: int) -> np.ndarray:
    """``n`` unit vectors spread evenly over a hemisphere (a Fibonacci lattice)."""
    k = np.arange(n) + 0.5
    z = k / n
    r, phi = np.sqrt(1.0 - z * z), np.pi * (3.0 - np.sqrt(5.0)) * k
    return np.stack([r * np.cos(phi), r * np.sin(phi), z], 1)


def _cap(normal: np.ndarray, degrees: float, n: int) -> np.ndarray:
    """``n`` unit vectors within ``degrees`` of ``normal``."""
    k = np.arange(n) + 0.5
    z = 1.0 - (1.0 - np.cos(np.radians(degrees))) * k / n
    r, phi = np.sqrt(1.0 - z * z), np.pi * (3.0 - np.sqrt(5.0)) * k
    local = np.stack([r * np.cos(phi), r * np.sin(phi), z], 1)
    u = np.linalg.svd(normal[None, :])[2]  # rows: normal and two vectors across it
    return local @ np.stack([u[1], u[2], normal])


def _sharpest_sheet(points: np.ndarray, dirs: np.ndarray, bin_mm: float) -> tuple[int, int, np.ndarray, float]:
    """For each direction the histogram of the points' positions along it; the (direction,
    bin) of the fullest bin that holds 3 times more than every bin 12-24 mm away on both sides,
    that direction's histogram and the position (mm) of its first bin's lower edge."""
    proj = points.astype(np.float32) @ dirs.T.astype(np.float32)
    low = proj.min(0)
    idx = ((proj - low) / np.float32(bin_mm)).astype(np.int32)
    nb = int(idx.max()) + 1 + 12
    idx += (6 + np.arange(len(dirs), dtype=np.int32) * nb)[None, :]
    counts = np.bincount(idx.ravel(), minlength=nb * len(dirs)).reshape(len(dirs), nb)
    pad = np.pad(counts, ((0, 0), (6, 6)))
    near = np.max([pad[:, 6 + d: 6 + d + nb] for d in (-6, -5, -4, -3, 3, 4, 5, 6)], axis=0)
    score = np.where(counts >= SHEET_CONTRAST * np.maximum(near, 1), counts, 0)
    d, b = np.unravel_index(int(np.argmax(score)), score.shape)
    return int(d), int(b), counts[d], float(low[d]) - 6 * bin_mm


def find_table(body: np.ndarray, spacing) -> tuple[np.ndarray, float, float] | None:
    """The plane of a scanner table in the body, if there is one: (unit normal in i, j, k mm
    space, the slab's lower and upper offsets along it in mm). See the module notes."""
    small, steps = _coarse(body, spacing, TABLE_GRID_MM)
    kji = np.argwhere(small)
    if len(kji) < 100:
        return None
    stride = max(1, len(kji) // 20_000)
    pts = (kji[::stride, ::-1] * steps) * np.asarray(spacing, float)
    cell = float(np.prod(np.asarray(spacing, float) * steps)) * stride  # mm3 per sampled point
    dirs = _hemisphere(500)
    for _ in range(2):  # a 6-degree lattice, then 1-degree steps around its best direction
        d, b, counts, base = _sharpest_sheet(pts, dirs, TABLE_GRID_MM)
        if counts[b] * cell / TABLE_GRID_MM < SHEET_AREA_MM2:
            return None
        normal = dirs[d]
        dirs = _cap(normal, 6.0, 100)
    lo, hi = b, b
    while lo - 1 >= 0 and counts[lo - 1] >= 0.3 * counts[b] and (hi - lo + 1) * TABLE_GRID_MM < 60.0:
        lo -= 1
    while hi + 1 < len(counts) and counts[hi + 1] >= 0.3 * counts[b] and (hi - lo + 1) * TABLE_GRID_MM < 60.0:
        hi += 1
    along = pts @ normal
    sheet = pts[(along >= base + lo * TABLE_GRID_MM) & (along < base + (hi + 1) * TABLE_GRID_MM)]
    centred = sheet - sheet.mean(0)
    axes = np.linalg.svd(centred[:: max(1, len(sheet) // 5000)], full_matrices=False)[2]
    normal = axes[2] * np.sign(axes[2] @ normal)  # the sheet's own plane (a least-squares fit)
    if np.ptp(centred @ axes[0]) < 100.0 or np.ptp(centred @ axes[1]) < 100.0:
        return None
    lo_mm, hi_mm = _sheet_layers(pts @ normal, float(np.median(sheet @ normal)),
                                 float((steps * np.asarray(spacing, float))[int(np.argmax(np.abs(normal)))]))
    margin = 0.5 * max(spacing) + float(np.max((steps - 1) * np.asarray(spacing, float)))  # voxels between samples
    return normal, lo_mm - margin, hi_mm + margin


def _sheet_layers(along: np.ndarray, centre: float, pitch: float) -> tuple[float, float]:
    """The first and last layer (mm) of the sheet around ``centre``: with the fitted normal the
    grid's layers project ``pitch`` apart; neighbours holding 30 % of the sheet's fullest layer
    belong to it (up to 60 mm)."""
    idx = np.round((along - centre) / pitch).astype(np.int64)  # layer 0 holds the sheet's centre
    c0 = -int(idx.min())
    idx += c0
    counts = np.bincount(idx)
    c = max(0, c0 - 2) + int(np.argmax(counts[max(0, c0 - 2): c0 + 3]))  # its fullest layer
    lo = hi = c
    while lo > 0 and counts[lo - 1] >= 0.3 * counts[c] and (hi - lo + 1) * pitch < 60.0:
        lo -= 1
    while hi + 1 < len(counts) and counts[hi + 1] >= 0.3 * counts[c] and (hi - lo + 1) * pitch < 60.0:
        hi += 1
    inside = (idx >= lo) & (idx <= hi)
    return float(along[inside].min()), float(along[inside].max())


def remove_table(body: np.ndarray, spacing) -> tuple[np.ndarray, float]:
    """The body without a scanner table (a flat slab the head lies on), and the volume removed
    (ml; 0 when there is no table). The slab is removed where the head touches it too."""
    found = find_table(body, spacing)
    if found is None:
        return body, 0.0
    normal, lo, hi = found
    n_k, n_j, n_i = body.shape
    along_ji = (np.arange(n_j)[:, None] * spacing[1] * normal[1] + np.arange(n_i)[None, :] * spacing[0] * normal[0])
    table = np.zeros_like(body)
    for k in range(n_k):  # slice by slice: no full-size float array
        d = along_ji + k * spacing[2] * normal[2]
        table[k] = body[k] & (d >= lo) & (d <= hi)
    removed_ml = float(table.sum()) * float(np.prod(spacing)) / 1000.0
    return body & ~table, removed_ml


def soft_tissue_warning(body: np.ndarray, hu: np.ndarray, bone_hu: float) -> str | None:
    """A warning when the skin surface is bone (no soft tissue), else None: more than
    :data:`BARE_BONE_SHARE` of the body's outer voxels are at or above ``bone_hu``."""
    from scipy.ndimage import binary_erosion

    surface = body & ~binary_erosion(body, border_value=1)
    if surface.sum() < 20:
        return None
    share = float((hu[surface] >= bone_hu).mean())
    if share <= BARE_BONE_SHARE:
        return None
    return (f"no soft tissue: the skin surface is bone over {share:.0%} of its area (a dry skull, or a scan of bone "
            "only): the skin mesh is the bone's outer surface, not a face, and soft-tissue predictions from it are "
            "meaningless")


def _end_name(direction: np.ndarray, axis: int, sign: int) -> str:
    v = np.asarray(direction, float)[:, axis] * sign  # LPS direction of that end of the index axis
    k = int(np.argmax(np.abs(v)))
    return _END_NAMES[(k, 1 if v[k] > 0 else -1)]


def cut_warnings(body: np.ndarray, bone: np.ndarray, direction: np.ndarray, spacing) -> list[str]:
    """Which ends of the field of view cut the head (``direction``: columns are the anatomical
    LPS directions of i, j, k); see the module notes."""
    out, spacing = [], np.asarray(spacing, float)
    for axis in range(3):  # index axis i, j, k = numpy axis 2 - axis
        np_axis = 2 - axis
        other = float(np.prod(np.delete(spacing, axis)))
        sections = body.sum(axis=tuple(a for a in range(3) if a != np_axis)) * other
        for sign, idx in ((-1, 0), (1, body.shape[np_axis] - 1)):
            name = _end_name(direction, axis, sign)
            area = float(sections[idx])
            if name == "bottom":
                if area > 0 and _bottom_cuts_chin(body, bone, np_axis, idx, direction, spacing):
                    out.append("the scan cuts the head at the bottom through the jaws: the chin is missing (bone runs "
                               "into the bottom of the field of view at the front); the surfaces are closed flat there")
                continue
            if area >= CUT_AREA_MM2 and area >= CUT_AREA_SHARE * float(sections.max()):
                edge = "top" if name == "top" else f"{name} edge of the field of view"
                out.append(f"the scan cuts the head at the {edge}: {_MISSING[name]} ({area / 100:.0f} cm2 of body on "
                           "that edge); the surfaces are closed flat there")
    return out


def _bottom_cuts_chin(body, bone, np_axis: int, idx: int, direction, spacing) -> bool:
    end_body = np.take(body, idx, axis=np_axis)
    end_bone = np.take(bone, idx, axis=np_axis) & end_body
    if end_bone.sum() < 3:
        return False
    rows, cols = np.nonzero(end_body)
    axes = [a for a in range(3) if a != np_axis]  # numpy axes of the slice's rows and columns
    kji = np.zeros((rows.size, 3))
    kji[:, axes[0]], kji[:, axes[1]], kji[:, np_axis] = rows, cols, idx
    anterior = -(kji[:, ::-1] * spacing) @ np.asarray(direction, float)[1]  # -y of the LPS frame
    front = float(anterior.max())
    near_front = end_bone[rows, cols] & (anterior >= front - CHIN_FRONT_MM)
    return int(near_front.sum()) >= 3
