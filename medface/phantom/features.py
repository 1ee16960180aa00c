"""The facial-feature vocabulary: HPO terms as operational definitions on landmarks.

Each :class:`FacialFeature` names one facial HPO term, the measurement that defines it
objectively (a landmark distance, angle or index; Elements of Morphology, Allanson et al.
2009 and Hall et al. 2009, define most facial terms as a measurement beyond 2 SD of the
mean), the direction of the change, and how the phantom expresses it: a shift of one or more
shape components (``medface.phantom.shape``), in SD of each component per SD of the feature.
A subject carrying a feature at ``amount`` SD gets those shifts on top of its normal
variation (``medface.phantom.head.sample_subject(features=...)``).

The eleven condition presets of ``medface.phantom.tables`` are features too: their
definition, measurement and shifts are read from the preset, not repeated here.
Terms the phantom cannot express yet (it has closed eyes and ears that lie mostly inside the
scalp: ptosis, epicanthus, low-set and posteriorly rotated ears; no philtral ridges or tip
lobules: smooth philtrum, bulbous nose; a subnasale too close to A point: long nose) are
listed in :data:`NOT_EXPRESSED` with the reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import ParameterError
from . import shape as SH
from . import tables as TB

EOM = "Elements of Morphology (Allanson et al. 2009; Hall et al. 2009; Hennekam et al. 2009; Carey et al. 2009)"
_OPERATIONAL = ("assumption: the operational measurement and the shifted components were chosen for the "
                "phantom; the 2 SD threshold follows Elements of Morphology")


# ---------------------------------------------------------------------------------------------
# measurements that are not a shape component of their own
def _facial_index(L):
    """Morphological facial index: n-gn over zy-zy, x100."""
    return 100.0 * float(np.linalg.norm(L["n"] - L["gn"]) / np.linalg.norm(L["zy_l"] - L["zy_r"]))


def _cephalic_index(L):
    """Cephalic index: maximum cranial breadth over length, x100."""
    return 100.0 * float(np.linalg.norm(L["eu_l"] - L["eu_r"]) / np.linalg.norm(L["g"] - L["op"]))


def _jaw_cheek_ratio(L):
    """Bigonial over bizygomatic breadth, x100 (small in a triangular face)."""
    return 100.0 * float(np.linalg.norm(L["go_l"] - L["go_r"]) / np.linalg.norm(L["zy_l"] - L["zy_r"]))


SCALP_MM = 5.5  # assumption: soft tissue over euryon (the phantom places no soft-tissue euryon)


def _head_circumference(L):
    """Occipitofrontal circumference (mm): the ellipse through g'-op' and eu-eu plus the scalp
    (Ramanujan's perimeter; an approximation of a tape measure)."""
    a = 0.5 * float(np.linalg.norm(L["g_s"] - L["op_s"]))
    b = 0.5 * float(np.linalg.norm(L["eu_l"] - L["eu_r"])) + SCALP_MM
    h = ((a - b) / (a + b)) ** 2
    return math.pi * (a + b) * (1 + 3 * h / (10 + math.sqrt(4 - 3 * h)))


def _chin_offset(L):
    """Chin offset (mm): menton's distance from the mid-sagittal plane."""
    return abs(float(L["me"][0]))


DERIVED = {
    "facial_index": (_facial_index, "facial index n-gn/zy-zy x100"),
    "cephalic_index": (_cephalic_index, "cephalic index eu-eu/g-op x100"),
    "jaw_cheek_ratio": (_jaw_cheek_ratio, "bigonial/bizygomatic breadth x100"),
    "head_circumference": (_head_circumference, "head circumference (ellipse over g'-op' and eu-eu + scalp, mm)"),
    "chin_offset": (_chin_offset, "chin offset |me x| from the mid-sagittal plane (mm)"),
}
_COMPONENTS = {c.name: c for c in SH.COMPONENTS}


def measure_ids() -> list[str]:
    """Every measurement a feature can be defined on: the shape components, then the derived ones."""
    return list(SH.NAMES) + list(DERIVED)


def measure(landmarks: dict, measure_id: str) -> float:
    if measure_id in _COMPONENTS:
        return float(_COMPONENTS[measure_id].measure(landmarks))
    if measure_id in DERIVED:
        return float(DERIVED[measure_id][0](landmarks))
    raise ParameterError(f"no facial measurement {measure_id!r}; known: {', '.join(measure_ids())}",
                         parameter="measure")


def measure_description(measure_id: str) -> str:
    if measure_id in _COMPONENTS:
        return _COMPONENTS[measure_id].description
    return DERIVED[measure_id][1]


def measure_all(landmarks: dict, measure_ids_: list[str] | None = None) -> dict[str, float]:
    """Every facial measurement the landmarks allow (those with a missing landmark are left out)."""
    out = {}
    for mid in measure_ids_ or measure_ids():
        try:
            out[mid] = measure(landmarks, mid)
        except KeyError:
            continue
    return out


#: measurements that do not depend on how the head is oriented (distances and their ratios)
ORIENTATION_FREE = frozenset({
    "cranial_length", "cranial_breadth", "bizygomatic_breadth", "bigonial_breadth", "interorbital_breadth",
    "nasal_protrusion", "nasal_width", "mouth_width", "palpebral_fissure_length", "intercanthal_width",
    "nasal_height", "frontal_breadth", "facial_index", "cephalic_index", "jaw_cheek_ratio", "head_circumference"})


def frankfurt_aligned(landmarks: dict) -> tuple[dict | None, str]:
    """The landmarks in the head frame the measurements assume (:func:`medface.anatomy.head_frame`:
    mid-sagittal plane from the bilateral pairs, the Frankfurt horizontal through porion and
    orbitale or, on a face surface, tragion and soft-tissue orbitale; x left, y posterior, z up),
    and which horizontal was used; ``(None, reason)`` when no frame can be made (then only
    :data:`ORIENTATION_FREE` measurements hold)."""
    from ..anatomy import head_frame
    from ..errors import InputError

    try:
        frame = head_frame(landmarks)
    except InputError as exc:
        return None, str(exc)
    keys = list(landmarks)
    moved = frame.to_frame(np.array([landmarks[k] for k in keys], float))
    return dict(zip(keys, moved)), frame.horizontal


# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FacialFeature:
    """One facial HPO term as a measurement beyond ``threshold_sd`` in ``direction``.

    ``shifts`` maps shape components to their shift, in the component's SD, per SD of the
    feature (signed: a feature with ``direction=-1`` lists negative shifts).
    """

    id: str
    hpo: str
    label: str
    measure: str
    direction: int
    shifts: tuple[tuple[str, float], ...]
    definition: str
    source: str
    region: str
    threshold_sd: float = 2.0
    condition: str | None = None  # the tables.CONDITIONS preset it is read from

    def component_shifts(self, amount: float) -> dict[str, float]:
        """Shift of each shape component, in its SD, for a feature ``amount`` SD strong."""
        return {name: w * float(amount) for name, w in self.shifts}


def _from_condition(condition_id: str, region: str) -> FacialFeature:
    preset = TB.condition(condition_id)
    by_table = {c.table_id: c.name for c in SH.COMPONENTS if c.table_id}
    unit = preset.shifts("moderate")
    scale = abs(preset.shift_sd("moderate"))
    shifts = tuple((by_table[m], s / scale) for m, s in unit.items() if m in by_table)
    measure_id = by_table.get(preset.measure, preset.measure)
    hpo, label = preset.hpo[0]
    return FacialFeature(condition_id, hpo, label, measure_id, preset.direction, shifts, preset.definition, preset.definition_source, region, preset.threshold_sd,
                         condition=condition_id)


def _f(id_, hpo, label, measure_id, direction, shifts, definition, region, *, source=_OPERATIONAL):
    return FacialFeature(id_, hpo, label, measure_id, direction, tuple(shifts), definition, source, region)


FEATURES: list[FacialFeature] = [
    # eyes -----------------------------------------------------------------------------------
    _from_condition("hypertelorism", "eyes"),
    _from_condition("hypotelorism", "eyes"),
    _f("telecanthus", "HP:0000506", "Telecanthus", "intercanthal_width", +1,
       [("intercanthal_width", 1.0)],
       "Objective: intercanthal distance more than 2 SD above the mean with normal interpupillary "
       "distance (Elements of Morphology); the phantom widens en-en alone, the orbits stay.", "eyes",
       source=f"{EOM}; {_OPERATIONAL}"),
    _from_condition("short_palpebral_fissure", "eyes"),
    _f("long_palpebral_fissure", "HP:0000637", "Long palpebral fissure", "palpebral_fissure_length", +1,
       [("palpebral_fissure_length", 1.0)],
       "Objective: distance between the medial and lateral canthi more than 2 SD above the mean for age.",
       "eyes", source=f"{EOM}; {_OPERATIONAL}"),
    _f("upslanted_palpebral_fissure", "HP:0000582", "Upslanted palpebral fissure", "palpebral_slant", +1,
       [("palpebral_slant", 1.0)],
       "Objective: the palpebral fissure's inclination (exocanthion above endocanthion) more than 2 SD "
       "above the mean.", "eyes", source=f"{EOM}; {_OPERATIONAL}"),
    _f("downslanted_palpebral_fissures", "HP:0000494", "Downslanted palpebral fissures", "palpebral_slant", -1,
       [("palpebral_slant", -1.0)],
       "Objective: the palpebral fissure's inclination more than 2 SD below the mean.", "eyes",
       source=f"{EOM}; {_OPERATIONAL}"),
    _f("deeply_set_eye", "HP:0000490", "Deeply set eye", "eye_protrusion", -1, [("eye_protrusion", -1.0)],
       "An eye more recessed into the skull than typical: the lid's front stands less far ahead of the "
       "lateral orbital rim (as exophthalmometry measures), more than 2 SD below the mean.", "eyes"),
    _f("proptosis", "HP:0000520", "Proptosis", "eye_protrusion", +1, [("eye_protrusion", 1.0)],
       "Forward protrusion of the eye: the lid's front stands more than 2 SD farther ahead of the lateral "
       "orbital rim than the mean (exophthalmometry).", "eyes"),
    # nose -----------------------------------------------------------------------------------
    _f("depressed_nasal_bridge", "HP:0005280", "Depressed nasal bridge", "nasal_root_depth", -1,
       [("nasal_root_depth", -1.0)],
       "Posterior positioning of the nasal root: soft nasion stands less far ahead of the inner canthi "
       "(more than 2 SD below the mean).", "nose"),
    _f("prominent_nasal_bridge", "HP:0000426", "Prominent nasal bridge", "nasal_root_depth", +1,
       [("nasal_root_depth", 1.0)],
       "Anterior positioning of the nasal root: soft nasion more than 2 SD farther ahead of the inner canthi.",
       "nose"),
    _f("short_nose", "HP:0003196", "Short nose", "nasal_height", -1,
       [("nasal_height", -1.4), ("philtrum_length", 0.6)],
       "Objective: distance from nasion to subnasale more than 2 SD below the mean; subnasale rises, so the "
       "philtrum lengthens with it.", "nose",
       source=f"{EOM}; {_OPERATIONAL}"),
    _f("anteverted_nares", "HP:0000463", "Anteverted nares", "nasal_tip_angle", +1, [("nasal_tip_angle", 1.3)],
       "Nares visible from the front with the face in the Frankfurt plane: operationalised as an upturned "
       "columella (sn-prn inclination more than 2 SD above the mean).", "nose"),
    _f("wide_nose", "HP:0000445", "Wide nose", "nasal_width", +1, [("nasal_width", 1.0)],
       "Objective: interalar distance more than 2 SD above the mean.", "nose", source=f"{EOM}; {_OPERATIONAL}"),
    _f("narrow_nose", "HP:0000460", "Narrow nose", "nasal_width", -1, [("nasal_width", -1.0)],
       "Objective: interalar distance more than 2 SD below the mean.", "nose", source=f"{EOM}; {_OPERATIONAL}"),
    _f("prominent_nasal_tip", "HP:0005274", "Prominent nasal tip", "nasal_protrusion", +1,
       [("nasal_protrusion", 1.3)],
       "Anterior protrusion of the nasal tip: subnasale-pronasale more than 2 SD above the mean.", "nose"),
    # mouth ----------------------------------------------------------------------------------
    _f("wide_mouth", "HP:0000154", "Wide mouth", "mouth_width", +1, [("mouth_width", 1.0)],
       "Objective: distance between the commissures more than 2 SD above the mean.", "mouth",
       source=f"{EOM}; {_OPERATIONAL}"),
    _f("narrow_mouth", "HP:0000160", "Narrow mouth", "mouth_width", -1, [("mouth_width", -1.0)],
       "Objective: distance between the commissures more than 2 SD below the mean.", "mouth",
       source=f"{EOM}; {_OPERATIONAL}"),
    _f("thick_upper_lip_vermilion", "HP:0000215", "Thick upper lip vermilion", "upper_vermilion_height", +1,
       [("upper_vermilion_height", 1.0)],
       "Objective: midline height of the upper vermilion more than 2 SD above the mean.", "mouth",
       source=f"{EOM}; {_OPERATIONAL}"),
    _from_condition("thin_upper_lip_vermilion", "mouth"),
    _f("thick_lower_lip_vermilion", "HP:0000179", "Thick lower lip vermilion", "lower_vermilion_height", +1,
       [("lower_vermilion_height", 1.0)],
       "Objective: midline height of the lower vermilion more than 2 SD above the mean.", "mouth",
       source=f"{EOM}; {_OPERATIONAL}"),
    _f("thin_lower_lip_vermilion", "HP:0010282", "Thin lower lip vermilion", "lower_vermilion_height", -1,
       [("lower_vermilion_height", -1.0)],
       "Objective: midline height of the lower vermilion more than 2 SD below the mean.", "mouth",
       source=f"{EOM}; {_OPERATIONAL}"),
    _from_condition("long_philtrum", "mouth"),
    _f("short_philtrum", "HP:0000322", "Short philtrum", "philtrum_length", -1, [("philtrum_length", -1.0)],
       "Objective: distance between nasal base and midline upper lip vermilion border more than 2 SD below "
       "the mean.", "mouth", source=f"{EOM}; {_OPERATIONAL}"),
    _f("downturned_corners_of_mouth", "HP:0002714", "Downturned corners of mouth", "mouth_corner_drop", +1,
       [("mouth_corner_drop", 1.0)],
       "Commissures below the midline stomion: the cheilia's drop below stomion more than 2 SD above the mean.",
       "mouth"),
    # jaw ------------------------------------------------------------------------------------
    _from_condition("micrognathia", "jaw"),
    _from_condition("retrognathia", "jaw"),
    _from_condition("mandibular_prognathia", "jaw"),
    # face and forehead ----------------------------------------------------------------------
    _f("prominent_forehead", "HP:0011220", "Prominent forehead", "forehead_inclination", -1,
       [("forehead_inclination", -1.0)],
       "Forward prominence of the whole forehead: the glabella-trichion line more upright than the mean by "
       "more than 2 SD.", "forehead"),
    _f("sloping_forehead", "HP:0000340", "Sloping forehead", "forehead_inclination", +1,
       [("forehead_inclination", 1.0)],
       "Inclination of the anterior surface of the forehead from the vertical more than 2 SD above the mean.",
       "forehead", source=f"{EOM}; {_OPERATIONAL}"),
    _f("frontal_bossing", "HP:0002007", "Frontal bossing", "frontal_breadth", +1,
       [("frontal_breadth", 1.2)],
       "Bilateral bulging of the lateral frontal bone: minimum frontal breadth more than 2 SD above the mean.",
       "forehead"),
    _from_condition("midface_retrusion", "midface"),
    _f("malar_flattening", "HP:0000272", "Malar flattening", "malar_projection", -1, [("malar_projection", -1.7)],
       "Underdevelopment of the malar prominences: soft orbitale stands less far ahead of porion (more than "
       "2 SD below the mean).", "midface"),
    _f("long_face", "HP:0000276", "Long face", "facial_index", +1,
       [("lower_face_height", 0.6), ("upper_face_height", 0.4), ("bizygomatic_breadth", -0.4)],
       "Facial height disproportionately large for its breadth: facial index n-gn/zy-zy more than 2 SD above "
       "the mean.", "face"),
    _f("round_face", "HP:0000311", "Round face", "facial_index", -1,
       [("bizygomatic_breadth", 0.7), ("lower_face_height", -0.7), ("bigonial_breadth", 0.4)],
       "Facial breadth large for its height, rounded jaw: facial index more than 2 SD below the mean.", "face"),
    _f("triangular_face", "HP:0000325", "Triangular face", "jaw_cheek_ratio", -1,
       [("bigonial_breadth", -0.8), ("frontal_breadth", 0.4)],
       "Wide across the temples and cheeks, narrow at the jaw: bigonial/bizygomatic breadth more than 2 SD "
       "below the mean.", "face"),
    _f("facial_asymmetry", "HP:0000324", "Facial asymmetry", "chin_offset", +1,
       [("chin_deviation", 1.0), ("ramus_height_difference", 0.7)],
       "Objective: a chin that lies off the mid-sagittal plane by more than 2 SD of its normal deviation, "
       "with a shorter ramus on that side (the hemifacial_microsomia condition codes the same term).",
       "face"),
    # skull ----------------------------------------------------------------------------------
    _f("microcephaly", "HP:0000252", "Microcephaly", "head_circumference", -1,
       [("cranial_length", -0.8), ("cranial_breadth", -0.8), ("auricular_height", -0.4)],
       "Occipitofrontal circumference below the 3rd centile (about -1.88 SD); the phantom shortens and "
       "narrows the cranium.", "skull", source=f"{TB.condition('macrocephaly').definition_source}; {_OPERATIONAL}"),
    _from_condition("macrocephaly", "skull"),
    _f("brachycephaly", "HP:0000248", "Brachycephaly", "cephalic_index", +1,
       [("cranial_breadth", 0.6), ("cranial_length", -0.6)],
       "Cephalic index (breadth over length) above the upper normal limit (about 81): the phantom widens and "
       "shortens the cranium, the index more than 2 SD above the mean.", "skull"),
    _f("dolichocephaly", "HP:0000268", "Dolichocephaly", "cephalic_index", -1,
       [("cranial_breadth", -0.6), ("cranial_length", 0.6)],
       "Cephalic index below the lower normal limit (about 76): a long narrow cranium, the index more than "
       "2 SD below the mean.", "skull"),
]

NOT_EXPRESSED = {
    "HP:0000508": ("Ptosis", "the phantom's eyes are closed: no upper-lid position to lower"),
    "HP:0000286": ("Epicanthus", "closed eyes, no inner-canthal fold"),
    "HP:0000369": ("Low-set ears", "the pinna lies mostly inside the scalp above the tragion (template geometry)"),
    "HP:0000358": ("Posteriorly rotated ears", "as for low-set ears: no free ear axis to rotate"),
    "HP:0000319": ("Smooth philtrum", "the phantom has no philtral ridges"),
    "HP:0000414": ("Bulbous nose", "no landmark measures the tip lobule's width"),
    "HP:0003189": ("Long nose", "the template's subnasale lies 2 mm above the skin pinned over A point: "
                                "lowering it far enough folds the upper lip"),
}

_BY_ID = {f.id: f for f in FEATURES}
_BY_HPO = {f.hpo: f for f in FEATURES}
if len(_BY_ID) != len(FEATURES) or len(_BY_HPO) != len(FEATURES):
    raise RuntimeError("duplicate facial feature id or HPO term")


def feature(feature_id: str) -> FacialFeature:
    """A feature by its id or its HPO id."""
    found = _BY_ID.get(feature_id) or _BY_HPO.get(feature_id)
    if found is None:
        raise ParameterError(f"unknown facial feature {feature_id!r}; known: {', '.join(_BY_ID)}",
                             parameter="features")
    return found


def hpo_terms() -> list[str]:
    """The HPO ids the phantom can express."""
    return [f.hpo for f in FEATURES]


def markdown_table() -> str:
    """The vocabulary as the table of docs/phantom.md (norms from :mod:`medface.phantom.norms`)."""
    from .norms import norm

    rows = ["| HPO term | feature id | measurement | direction | shift per SD of the feature (component, in its SD) "
            "| phantom norm, women: centre (spread) |", "|---|---|---|---|---|---|"]
    for f in FEATURES:
        centre, spread = norm(f.measure, "F")
        shifts = ", ".join(f"{name} {w:+.1f}" for name, w in f.shifts)
        preset = " (condition preset)" if f.condition else ""
        rows.append(f"| {f.hpo} {f.label} | {f.id}{preset} | {measure_description(f.measure)} | "
                    f"{'+' if f.direction > 0 else '-'} | {shifts} | {centre:.1f} ({spread:.1f}) |")
    return "\n".join(rows) + "\n"
