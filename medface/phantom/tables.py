"""Reference data for the synthetic head phantom: soft-tissue depths, anthropometric norms,
correlations and condition presets, each value with its source.

This module is plain data (standard library only, and medface's error classes). Every number
carries a ``source`` string that is either

* one or more keys of :data:`REFERENCES`, separated by ``"; "`` (the value was read from that
  publication, or from the secondary source named there), or
* a string starting with ``"assumption:"`` that says why the value had to be assumed.

Honesty beats coverage: a value that could not be checked against a source is marked as an
assumption, even when a publication exists that *should* contain it. Those publications are
listed in the entry's ``check_against`` so that the value can be replaced once the table is
read. ``verified`` is ``True`` only when the mean (and SD) come from a source.

Units: millimetres and degrees; BMI in kg/m^2; age in years.

Run ``python -m medface.phantom.tables --write docs/phantom-references.md`` to regenerate the
documentation after changing an entry (a test checks that the file is up to date).
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field

from ..errors import ParameterError

__all__ = [
    "REFERENCES", "TissueDepth", "Measurement", "Correlation", "ConditionPreset",
    "TISSUE_DEPTHS", "ANTHROPOMETRY", "CORRELATIONS", "CONDITIONS", "SEVERITIES",
    "AGE_RANGE", "BMI_RANGE", "MIN_TISSUE_DEPTH_MM", "ASSUMPTION_PREFIX",
    "tissue_depth", "tissue_entry", "norm", "measurement", "condition", "condition_targets",
    "source_keys", "is_assumption", "assumptions", "markdown_document",
]

ASSUMPTION_PREFIX = "assumption:"
SEVERITIES = ("mild", "moderate", "severe")
AGE_RANGE = (18.0, 100.0)
BMI_RANGE = (10.0, 60.0)
MIN_TISSUE_DEPTH_MM = 0.5
"""Floor applied by :func:`tissue_depth` after the linear age/BMI adjustment."""

# --------------------------------------------------------------------------------------------
# References (short key used in ``source`` -> full citation)
# --------------------------------------------------------------------------------------------

_DG06 = "De Greef et al. 2006"
_DG09 = "De Greef et al. 2009"
_SS08 = "Stephan & Simpson 2008"
_ST13 = "Stephan 2013"
_ST17 = "Stephan 2017"
_CH15 = "Chung et al. 2015"
_CHA13 = "Cha 2013"
_TO18 = "Toneva et al. 2018"
_LEB18 = "Lebanese FSTT 2018"
_SH02 = "Simpson & Henneberg 2002"
_RI74 = "Riolo et al. 1974"
_RID = "Riolo data (Middleton)"
_ST53 = "Steiner 1953"
_STS = "Steiner norms (secondary)"
_ICD22 = "Intercanthal distance pooled analysis"
_FA94 = "Farkas 1994"
_FA05 = "Farkas et al. 2005"
_MS57 = "Martin & Saller 1957"
_HO73 = "Howells 1973"
_HA09 = "Hall et al. 2009"
_AL09 = "Allanson et al. 2009"
_HE09 = "Hennekam et al. 2009"
_CA09 = "Carey et al. 2009"
_EOM = "Elements of Morphology"
_HPO = "Human Phenotype Ontology"
_CLF = "Cliniface HPO table"

REFERENCES: dict[str, str] = {
    _DG06: "De Greef S, Claes P, Vandermeulen D, Mollemans W, Suetens P, Willems G. Large-scale in-vivo "
           "Caucasian facial soft tissue thickness database for craniofacial reconstruction. Forensic "
           "Science International 2006;159 Suppl 1:S126-S146. (967 Caucasian adults, 510 women and 457 men, "
           "ultrasound, 52 landmarks; tables by sex, age and BMI.) Abstract read; tables not retrieved.",
    _DG09: "De Greef S, Vandermeulen D, Claes P, Suetens P, Willems G. The influence of sex, age and body "
           "mass index on facial soft tissue depths. Forensic Science, Medicine, and Pathology "
           "2009;5(2):60-65. doi:10.1007/s12024-009-9085-9. (Robust multiple linear regression of depth on "
           "BMI, age and sex per landmark.) Abstract read; coefficients not retrieved.",
    _SS08: "Stephan CN, Simpson EK. Facial soft tissue depths in craniofacial identification (part I): an "
           "analytical review of the published adult data. Journal of Forensic Sciences 2008;53(6):1257-1272. "
           "doi:10.1111/j.1556-4029.2008.00852.x. (Pooled 'T-Table'; found minor male-female differences.) "
           "Abstract read; table not retrieved.",
    _ST13: "Stephan CN. The application of the central limit theorem and the law of large numbers to facial "
           "soft tissue depths: T-Table robustness and trends since 2008. Journal of Forensic Sciences (2013 "
           "T-Table). doi:10.1111/1556-4029.12328. Abstract read; table not retrieved.",
    _ST17: "Stephan CN. 2018 tallied facial soft tissue thicknesses for adults and sub-adults (2018 T-Table). "
           "Forensic Science International 2017. doi:10.1016/j.forsciint.2017.09.016. Abstract read (gonion "
           "and mid-mandibular border 2-2.5 mm thicker than in 2008); table not retrieved.",
    _CH15: "Chung J-H, Chen H-T, Hsu W-Y, Huang G-S, Shaw K-P. A CT-scan database for the facial soft tissue "
           "thickness of Taiwan adults. Forensic Science International 2015;253:132.e1-132.e11. "
           "doi:10.1016/j.forsciint.2015.04.028. Abstract read; tables not retrieved.",
    _CHA13: "Cha KS. Soft-tissue thickness of South Korean adults with normal facial profiles. Korean Journal "
            "of Orthodontics 2013;43(4):178-185. doi:10.4041/kjod.2013.43.4.178. Abstract read; tables not "
            "retrieved.",
    _TO18: "Toneva D, Nikolova S, Georgiev I, Harizanov S, Zlatareva D, Hadjidekov V, Lazarov N. Facial soft "
           "tissue thicknesses in Bulgarian adults: relation to sex, body mass index and bilateral asymmetry. "
           "Folia Morphologica 2018;77(3):570-582. doi:10.5603/FM.a2017.0114. Abstract read; tables not "
           "retrieved.",
    _LEB18: "Midsagittal facial soft tissue thickness norms for Lebanese adults (87 men, 135 women, mean age "
            "23.49 +/- 6.24 years, lateral cephalograms). Forensic Science International 2018. "
            "doi:10.1016/j.forsciint.2018.10.021. Values used here (rhinion 3.07 +/- 0.72 mm; correlations "
            "upper-lower lip r = 0.763, pogonion-gnathion r = 0.784) were read from the abstract; authors "
            "and title were not retrieved.",
    _SH02: "Simpson E, Henneberg M. Variation in soft-tissue thicknesses on the human face and their relation "
           "to craniometric dimensions. American Journal of Physical Anthropology 2002;118(2):121-133. "
           "doi:10.1002/ajpa.10073. (Abstract: soft-tissue depths were highly positively correlated with each "
           "other; males thicker than females with considerable overlap.)",
    _RI74: "Riolo ML, Moyers RE, McNamara JA Jr, Hunter WS. An Atlas of Craniofacial Growth: Cephalometric "
           "Standards from the University School Growth Study, The University of Michigan. Craniofacial "
           "Growth Series, Monograph 2. Ann Arbor: Center for Human Growth and Development, University of "
           "Michigan; 1974. https://deepblue.lib.umich.edu/handle/2027.42/146700",
    _RID: "Middleton KM. Riolo_CF_Growth_Data: the linear cephalometric standards of Riolo et al. (1974) as "
          "data (R package). GitHub kmiddleton/Riolo_CF_Growth_Data, file inst/extdata/Riolo_data_linear.csv "
          "(commit a088f4eb82b556fcbae97a70d24539324e4c99a1). Secondary (digitised) source for the Riolo "
          "values used here.",
    _ST53: "Steiner CC. Cephalometrics for you and me. American Journal of Orthodontics 1953;39(10):729-755.",
    _STS: "Secondary summaries of Steiner's norms read for this table: Indian Dental Academy, 'Steiner's "
          "analysis' (slide deck, slideshare.net/indiandentalacademy/steiner-analysis-31881060) and a Scribd "
          "summary 'Rangkuman Steiner Analysis' (document 543059304): SNA 82 deg, SNB 80 deg, ANB 2 deg, "
          "mandibular plane (Go-Gn to SN) 32 deg, occlusal plane to SN 14 deg. Steiner's original was not "
          "read; no SDs are given there.",
    _ICD22: "Systematic review and pooled analysis of the intercanthal distance by sex and ethnicity (67 "
            "studies, 22,638 patients, 118 ethnic cohorts). PubMed Central PMC9029890. Value used here: White "
            "31.4 +/- 2.5 mm (sexes pooled), read from the abstract; journal and authors not retrieved.",
    _FA94: "Farkas LG (ed). Anthropometry of the Head and Face, 2nd ed. New York: Raven Press; 1994. "
           "(Measurement definitions; its norm tables were not retrieved.)",
    _FA05: "Farkas LG, Katic MJ, Forrest CR, et al. International anthropometric study of facial morphology in "
           "various ethnic groups/races. Journal of Craniofacial Surgery 2005;16(4):615-646. (1470 adults "
           "18-30 years; North American white norms as reference.) Abstract read; tables not retrieved.",
    _MS57: "Martin R, Saller K. Lehrbuch der Anthropologie in systematischer Darstellung, 3rd ed., vol. 1. "
           "Stuttgart: Gustav Fischer; 1957. (Craniometric measurement definitions.)",
    _HO73: "Howells WW. Cranial Variation in Man: A Study by Multivariate Analysis of Patterns of Difference "
           "Among Recent Human Populations. Papers of the Peabody Museum of Archaeology and Ethnology, vol. 67. "
           "Cambridge, MA: Peabody Museum; 1973. (Measurement definitions GOL, XCB, ZYB, OBH, OBB, DKB, NLH, "
           "NLB; the data set itself was not read.)",
    _HA09: "Hall BD, Graham JM Jr, Cassidy SB, Opitz JM. Elements of morphology: standard terminology for the "
           "periorbital region. American Journal of Medical Genetics Part A 2009;149A(1). PMID 19125427. "
           "(Author list from memory; PMID verified through the HPO definitions that cite it; page range not "
           "verified.)",
    _AL09: "Allanson JE, Cunniff C, Hoyme HE, McGaughran J, Muenke M, Neri G. Elements of morphology: standard "
           "terminology for the head and face. American Journal of Medical Genetics Part A 2009;149A(1). "
           "PMID 19125436.",
    _HE09: "Hennekam RCM, Cormier-Daire V, Hall JG, Mehes K, Patton M, Stevenson RE. Elements of morphology: "
           "standard terminology for the nose and philtrum. American Journal of Medical Genetics Part A "
           "2009;149A(1). PMID 19152422. (Author list from memory; PMID verified through HPO.)",
    _CA09: "Carey JC, Cohen MM Jr, Curry CJR, Devriendt K, Holmes LB, Verloes A. Elements of morphology: "
           "standard terminology for the lips, mouth, and oral region. American Journal of Medical Genetics "
           "Part A 2009;149A(1). PMID 19125428. (Author list from memory; PMID verified through HPO.)",
    _EOM: "Elements of Morphology: Human Malformation Terminology (NIH/NHGRI), https://elementsofmorphology."
          "nih.gov. Term pages read: Eyes, Widely Spaced; Eyes, Closely Spaced; Philtrum, Short; "
          "Vermilion, Upper Lip, Thick; Palpebral Fissure, Long; Retrognathia; Midface Retrusion; "
          "Microcephaly.",
    _HPO: "Human Phenotype Ontology, https://hpo.jax.org. Term ids and labels checked against HPO-derived "
          "listings: the tadeus2.mimuw.edu.pl HPO browser, rgd.mcw.edu term pages, an OBO excerpt "
          "(HP:0000256 'Macrocephaly', def 'Occipitofrontal circumference greater than 97th centile', "
          "PMID 19125436) and term tables in public repositories.",
    _CLF: "Cliniface (frontiersi/Cliniface), file data/hpo.txt: HPO ids with objective criteria, e.g. "
          "12745|Short Palpebral Fissure (medial-lateral canthal distance more than 2 SD below the mean for "
          "age), 601|Hypotelorism, 316|Hypertelorism, 431|Wide Nasal Bridge (subjective). Secondary source.",
}


def source_keys(source: str) -> list[str]:
    """The :data:`REFERENCES` keys named by a ``source`` string ([] for an assumption)."""
    if is_assumption(source):
        return []
    return [k.strip() for k in source.split(";") if k.strip()]


def is_assumption(source: str) -> bool:
    return source.strip().lower().startswith(ASSUMPTION_PREFIX)


# --------------------------------------------------------------------------------------------
# Data classes
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TissueDepth:
    """Soft-tissue thickness (mm) from a bony landmark to the skin over it, adult.

    ``bony_id``/``soft_id`` are ids of :mod:`medface.anatomy.landmarks` (the left-side id for a
    bilateral site; the right side mirrors it) or ``None`` where the vocabulary has no such
    point. The thickness at (age, BMI) is ``mean + bmi_slope*(bmi - ref_bmi) +
    age_slope*(age - ref_age)`` (see :func:`tissue_depth`).
    """

    key: str
    name: str
    bony_id: str | None
    soft_id: str | None
    bilateral: bool
    mean_male: float
    sd_male: float
    mean_female: float
    sd_female: float
    bmi_slope: float            # mm per kg/m^2
    age_slope: float            # mm per year
    ref_age: float              # age (years) at which the means apply (intercept point)
    ref_bmi: float              # BMI (kg/m^2) at which the means apply
    ref_year: int | None        # year of the data the means come from (None: assumed value)
    source: str                 # of the means and SDs
    slope_source: str           # of bmi_slope and age_slope
    ref_source: str             # of ref_age and ref_bmi
    verified: bool
    check_against: tuple[str, ...] = ()
    note: str = ""

    def mean(self, sex: str = "unknown") -> float:
        return _sex_value(self.mean_male, self.mean_female, self.sd_male, self.sd_female, sex)[0]


@dataclass(frozen=True)
class Measurement:
    """An anthropometric or cephalometric norm (adult unless ``population`` says otherwise)."""

    id: str
    description: str
    landmarks: tuple[str, ...]
    kind: str                   # "bony" (skull/cephalogram) or "soft" (living face)
    units: str                  # "mm" or "deg"
    mean_male: float
    sd_male: float
    mean_female: float
    sd_female: float
    population: str
    source: str                 # of the means
    sd_source: str              # of the SDs
    verified: bool
    check_against: tuple[str, ...] = ()
    note: str = ""


@dataclass(frozen=True)
class Correlation:
    """Pearson correlation between two entries of the same table ("tissue" or "anthropometry")."""

    table: str
    a: str
    b: str
    r: float
    source: str
    note: str = ""


@dataclass(frozen=True)
class ConditionPreset:
    """A dysmorphology preset: a documented shift of one measurement, in SD of the normal population.

    The shift of ``measure`` for a severity is ``direction * severity_sd[severity]`` SD;
    each ``(measure, weight)`` in ``also_shifts`` moves by ``weight`` times that (in its own
    SD, same sign unless the weight is negative). ``threshold_sd`` is the objective threshold
    of the definition (2 SD in Elements of Morphology); ``mild`` lies inside it on purpose,
    so that mild presets overlap the normal range.
    """

    id: str
    name: str
    hpo: tuple[tuple[str, str], ...]
    definition: str
    definition_source: str
    hpo_source: str
    measure: str
    direction: int
    severity_sd: dict = field(default_factory=dict)
    threshold_sd: float = 2.0
    also_shifts: tuple[tuple[str, float], ...] = ()
    side: str = "both"          # "both" or "unilateral"
    severity_source: str = ""
    note: str = ""

    def shift_sd(self, severity: str) -> float:
        """Signed shift of ``measure`` in SD for "mild", "moderate" or "severe"."""
        if severity not in self.severity_sd:
            raise ParameterError(f"severity {severity!r} is not one of {', '.join(SEVERITIES)}",
                                 parameter="severity")
        return self.direction * self.severity_sd[severity]

    def shifts(self, severity: str) -> dict[str, float]:
        """Signed shift in SD for every measurement the preset moves."""
        s = self.shift_sd(severity)
        out = {self.measure: s}
        for mid, w in self.also_shifts:
            out[mid] = w * s
        return out


# --------------------------------------------------------------------------------------------
# 1. Soft-tissue thickness
# --------------------------------------------------------------------------------------------

_FSTT_CHECK = (_SS08, _ST17, _DG06, _DG09, _CH15, _CHA13, _TO18)
_FSTT_ASSUMED = (
    "assumption: pooled adult value for both sexes, chosen within the range of published pooled means; "
    "the sex-specific tables of De Greef et al. 2006, the T-Tables (Stephan & Simpson 2008, Stephan 2017) "
    "and the CT tables (Chung et al. 2015, Cha 2013, Toneva et al. 2018) could not be read with the "
    "project's search tools, so the number is not verified. Stephan & Simpson 2008 report only minor "
    "male-female differences, hence the same value for both sexes")
_SLOPE_ASSUMED = (
    "assumption: De Greef et al. 2009 regress depth on BMI, age and sex per landmark and find BMI dominant, "
    "but their coefficients were not retrieved; slopes set larger over fat-bearing regions (cheek, jaw "
    "angle, chin) than over thin bony sites (forehead, nasal bones) and slightly negative with age at the "
    "lips")
_REF_ASSUMED = ("assumption: reference point age 40, BMI 25 (a mid-adult point); the sample means of "
                "age and BMI of the intended sources were not retrieved")


def _fstt(key, name, bony, soft, bilateral, mean, sd, *, bmi_slope, age_slope, note=""):
    return TissueDepth(
        key=key, name=name, bony_id=bony, soft_id=soft, bilateral=bilateral,
        mean_male=mean, sd_male=sd, mean_female=mean, sd_female=sd,
        bmi_slope=bmi_slope, age_slope=age_slope, ref_age=40.0, ref_bmi=25.0, ref_year=None,
        source=_FSTT_ASSUMED, slope_source=_SLOPE_ASSUMED, ref_source=_REF_ASSUMED, verified=False,
        check_against=_FSTT_CHECK, note=note)


TISSUE_DEPTHS: list[TissueDepth] = [
    # midline, top to bottom ------------------------------------------------------------------
    _fstt("vertex", "vertex", "v", "v_s", False, 5.5, 1.3, bmi_slope=0.05, age_slope=0.0,
          note="scalp at the vertex; not a classical facial-approximation landmark"),
    _fstt("supraglabella", "supraglabella", None, None, False, 4.5, 1.1, bmi_slope=0.06, age_slope=0.01,
          note="no vocabulary id for the supraglabellar point"),
    _fstt("glabella", "glabella", "g", "g_s", False, 5.5, 1.3, bmi_slope=0.08, age_slope=0.01),
    _fstt("nasion", "nasion", "n", "n_s", False, 6.5, 1.5, bmi_slope=0.08, age_slope=0.01),
    TissueDepth(
        key="rhinion", name="rhinion (end of nasals)", bony_id="rhi", soft_id=None, bilateral=False,
        mean_male=3.07, sd_male=0.72, mean_female=3.07, sd_female=0.72,
        bmi_slope=0.02, age_slope=0.0, ref_age=23.5, ref_bmi=23.0, ref_year=2018,
        source=_LEB18, slope_source=_SLOPE_ASSUMED,
        ref_source="assumption: ref_age 23.5 is the sample mean age of Lebanese FSTT 2018, but ref_bmi 23 "
                   "is assumed (BMI not reported in the abstract)",
        verified=True, check_against=_FSTT_CHECK,
        note="Lebanese young adults, sexes pooled, lateral cephalograms; no soft-tissue id in the "
             "vocabulary, kept as a bony-only depth"),
    _fstt("mid_philtrum", "mid-philtrum (A point)", "a", "a_s", False, 12.0, 2.2, bmi_slope=0.12, age_slope=-0.03),
    _fstt("upper_lip_margin", "upper lip margin (prosthion to labrale superius)", "pr", "ls", False,
          11.5, 2.2, bmi_slope=0.12, age_slope=-0.05, note="the vermilion thins with age"),
    _fstt("lower_lip_margin", "lower lip margin (infradentale to labrale inferius)", "id", "li", False,
          12.5, 2.2, bmi_slope=0.12, age_slope=-0.03),
    _fstt("chin_lip_fold", "chin-lip fold (B point to sublabiale)", "b", "sl", False, 10.8, 1.8,
          bmi_slope=0.18, age_slope=0.0),
    _fstt("mental_eminence", "mental eminence (pogonion)", "pog", "pog_s", False, 11.0, 2.3,
          bmi_slope=0.28, age_slope=0.0),
    _fstt("gnathion", "gnathion", "gn", "gn_s", False, 8.5, 2.2, bmi_slope=0.30, age_slope=0.0,
          note="added so that the published pogonion-gnathion correlation can be used"),
    _fstt("beneath_chin", "beneath chin (menton)", "me", "me_s", False, 7.5, 2.2, bmi_slope=0.32, age_slope=0.01),
    # bilateral (left ids; the right side mirrors) ----------------------------------------------
    _fstt("frontal_eminence", "frontal eminence", None, None, True, 4.5, 1.2, bmi_slope=0.06, age_slope=0.01,
          note="no vocabulary id"),
    _fstt("supraorbital", "supraorbital", None, None, True, 6.5, 1.6, bmi_slope=0.10, age_slope=0.01,
          note="no vocabulary id for supraorbitale"),
    _fstt("suborbital", "suborbital (orbitale)", "or_l", "or_s_l", True, 6.0, 2.0, bmi_slope=0.18, age_slope=0.02),
    _fstt("inferior_malar", "inferior malar", None, None, True, 13.0, 3.5, bmi_slope=0.45, age_slope=0.02,
          note="no vocabulary id"),
    _fstt("lateral_orbit", "lateral orbit", None, None, True, 9.0, 2.5, bmi_slope=0.30, age_slope=0.02,
          note="no vocabulary id"),
    _fstt("zygomatic_arch", "zygomatic arch (zygion)", "zy_l", "zy_s_l", True, 7.0, 2.0,
          bmi_slope=0.25, age_slope=0.02),
    _fstt("gonion", "gonion", "go_l", "go_s_l", True, 13.0, 4.0, bmi_slope=0.50, age_slope=0.02,
          note="Stephan 2017 (abstract): 2018 T-Table gonion 2-2.5 mm thicker than in 2008"),
    _fstt("supra_m2", "supra-M2 (maxillary alveolus over the second molar)", "ecm_l", None, True,
          23.0, 4.5, bmi_slope=0.55, age_slope=0.0,
          note="ectomolare is the vocabulary's point on the alveolus opposite M2"),
    _fstt("sub_m2", "sub-M2 (mandibular alveolus below the second molar)", None, None, True,
          20.0, 4.5, bmi_slope=0.55, age_slope=0.0, note="no vocabulary id"),
    _fstt("mid_ramus", "mid-ramus", None, None, True, 18.0, 4.0, bmi_slope=0.45, age_slope=0.0,
          note="no vocabulary id"),
]


# --------------------------------------------------------------------------------------------
# 2. Anthropometric and cephalometric norms
# --------------------------------------------------------------------------------------------

_RIOLO = f"{_RI74}; {_RID}"
_RIOLO_POP = ("Michigan University School Growth Study (Ann Arbor, USA), age 16 years (last year of the "
              "atlas), cephalograms; men n = 23, women n = 9")
_RIOLO_NOTE = ("age 16, not fully adult (male faces still grow after 16); cephalometric distances as "
               "tabulated in the atlas digitisation")
_STEINER_SD = ("assumption: Steiner 1953 gives single target values without SD; SD set to a typical "
               "magnitude for cephalometric angle samples (not from a source)")
_ANTHRO_ASSUMED = (
    "assumption: typical adult value of European-ancestry samples, not verified; the norm tables of "
    "Farkas 1994 / Farkas et al. 2005 (soft tissue) and Howells 1973 (skull) could not be read with the "
    "project's search tools")


def _riolo(id_, desc, lms, m, sm, f, sf):
    return Measurement(id_, desc, lms, "bony", "mm", m, sm, f, sf, _RIOLO_POP, _RIOLO, _RIOLO, True,
                       note=_RIOLO_NOTE)


def _steiner(id_, desc, lms, mean, sd, note=""):
    return Measurement(id_, desc, lms, "bony", "deg", mean, sd, mean, sd,
                       "Steiner's norm (no sex split; same value used for both sexes)",
                       f"{_ST53}; {_STS}", _STEINER_SD, False, note=note)


def _assumed(id_, desc, lms, kind, m, sm, f, sf, *, check, note=""):
    return Measurement(id_, desc, lms, kind, "mm", m, sm, f, sf, "adult, European ancestry (assumed)",
                       _ANTHRO_ASSUMED, _ANTHRO_ASSUMED, False, check_against=check, note=note)


_SKULL_CHECK = (_HO73, _MS57)
_FACE_CHECK = (_FA94, _FA05)

ANTHROPOMETRY: list[Measurement] = [
    # Cephalometric, verified (Riolo et al. 1974, age 16) --------------------------------------
    _riolo("anterior_cranial_base", "anterior cranial base length S-N", ("s", "n"), 83.3, 3.8, 76.9, 3.9),
    _riolo("cranial_base_length", "cranial base length Ba-N", ("ba", "n"), 120.4, 4.2, 112.0, 4.8),
    _riolo("total_anterior_face_height", "total anterior face height N-Me (bony morphological face height)",
           ("n", "me"), 136.8, 7.9, 123.2, 5.1),
    _riolo("upper_anterior_face_height", "upper anterior face height N-ANS (bony nasal height proxy)",
           ("n", "ans"), 57.7, 3.9, 55.7, 2.1),
    _riolo("lower_anterior_face_height", "lower anterior face height ANS-Me", ("ans", "me"),
           79.5, 6.2, 69.3, 5.2),
    _riolo("posterior_face_height", "posterior face height S-Go", ("s", "go_l"), 88.2, 5.9, 79.1, 4.3),
    _riolo("ramus_height", "mandibular ramus height Co-Go", ("co_l", "go_l"), 66.1, 4.1, 60.5, 2.4),
    _riolo("mandibular_body_length", "mandibular body length Go-Pog", ("go_l", "pog"), 86.5, 3.7, 81.5, 3.8),
    _riolo("mandibular_length", "total mandibular length Co-Gn", ("co_l", "gn"), 133.6, 5.4, 123.6, 4.0),
    _riolo("palatal_length", "palatal length ANS-PNS", ("ans", "pns"), 61.6, 3.7, 57.0, 4.4),
    # Cephalometric angles (Steiner 1953 via secondary summaries; SD assumed) ----------------------
    _steiner("sna", "SNA angle (maxillary position to the anterior cranial base)", ("s", "n", "a"), 82.0, 3.5),
    _steiner("snb", "SNB angle (mandibular position to the anterior cranial base)", ("s", "n", "b"), 80.0, 3.5),
    _steiner("anb", "ANB angle (maxillo-mandibular relation)", ("a", "n", "b"), 2.0, 2.0,
             note="SD assumed; ANB = SNA - SNB by construction on a 2D cephalogram"),
    _steiner("mandibular_plane_angle", "mandibular plane angle, Go-Gn to S-N", ("s", "n", "go_l", "gn"),
             32.0, 5.0),
    # Soft tissue, verified -----------------------------------------------------------------------
    Measurement("intercanthal_width", "intercanthal width en-en", ("en_l", "en_r"), "soft", "mm",
                31.4, 2.5, 31.4, 2.5, "White cohorts, sexes pooled (pooled analysis of 67 studies)",
                _ICD22, _ICD22, True, check_against=_FACE_CHECK,
                note="pooled across sexes: the same value is used for men and women"),
    # Skull, assumed ---------------------------------------------------------------------------------
    _assumed("cranial_length", "maximum cranial length g-op (GOL)", ("g", "op"), "bony",
             189.0, 6.5, 180.0, 6.0, check=_SKULL_CHECK),
    _assumed("cranial_breadth", "maximum cranial breadth eu-eu (XCB)", ("eu_l", "eu_r"), "bony",
             142.0, 5.5, 137.0, 5.0, check=_SKULL_CHECK),
    _assumed("auricular_height", "auricular (head) height po-v", ("po_l", "v"), "bony",
             118.0, 5.0, 113.0, 4.5, check=_SKULL_CHECK),
    _assumed("bizygomatic_breadth", "bizygomatic breadth zy-zy (ZYB)", ("zy_l", "zy_r"), "bony",
             132.0, 5.0, 123.0, 4.5, check=_SKULL_CHECK),
    _assumed("bigonial_breadth", "bigonial breadth go-go", ("go_l", "go_r"), "bony",
             100.0, 6.0, 92.0, 5.5, check=_SKULL_CHECK),
    _assumed("upper_facial_height", "upper facial height n-pr (NPH)", ("n", "pr"), "bony",
             71.0, 4.0, 66.0, 3.8, check=_SKULL_CHECK),
    _assumed("nasal_height_bony", "bony nasal height n-ns (NLH)", ("n", "ns"), "bony",
             53.0, 3.0, 49.5, 2.8, check=_SKULL_CHECK),
    _assumed("nasal_aperture_width", "piriform aperture breadth (NLB)", ("apl_l", "apl_r"), "bony",
             25.0, 2.0, 24.0, 1.9, check=_SKULL_CHECK),
    _assumed("interorbital_breadth", "interorbital breadth d-d (DKB)", ("d_l", "d_r"), "bony",
             22.0, 2.3, 21.0, 2.1, check=_SKULL_CHECK),
    _assumed("orbit_breadth", "orbital breadth mf-ek (OBB)", ("mf_l", "ek_l"), "bony",
             41.0, 1.9, 39.0, 1.8, check=_SKULL_CHECK),
    _assumed("orbit_height", "orbital height (OBH), perpendicular to orbital breadth", (), "bony",
             34.0, 2.0, 33.5, 1.9, check=_SKULL_CHECK,
             note="the vocabulary has no landmark pair for orbital height"),
    # Soft tissue, assumed ---------------------------------------------------------------------------
    _assumed("head_circumference", "head circumference (occipitofrontal, over g_s and op_s)",
             ("g_s", "op_s"), "soft", 570.0, 16.0, 550.0, 15.0, check=_FACE_CHECK,
             note="a girth, not a distance between the two landmarks"),
    _assumed("bizygomatic_breadth_soft", "face breadth zy'-zy'", ("zy_s_l", "zy_s_r"), "soft",
             140.0, 5.0, 131.0, 5.0, check=_FACE_CHECK),
    _assumed("bigonial_breadth_soft", "mandible breadth go'-go'", ("go_s_l", "go_s_r"), "soft",
             108.0, 6.5, 98.0, 6.0, check=_FACE_CHECK),
    _assumed("morphological_face_height", "morphological face height n'-gn'", ("n_s", "gn_s"), "soft",
             121.0, 6.5, 112.0, 5.5, check=_FACE_CHECK),
    _assumed("nasal_height", "nasal height n'-sn", ("n_s", "sn"), "soft", 54.0, 3.5, 50.0, 3.0, check=_FACE_CHECK),
    _assumed("nasal_width", "nasal width al-al", ("al_l", "al_r"), "soft", 35.0, 2.5, 31.5, 2.0, check=_FACE_CHECK),
    _assumed("nasal_protrusion", "nasal tip protrusion sn-prn", ("sn", "prn"), "soft",
             20.0, 2.0, 19.0, 1.8, check=_FACE_CHECK),
    _assumed("biocular_width", "biocular width ex-ex", ("ex_l", "ex_r"), "soft", 91.0, 3.5, 88.0, 3.5,
             check=_FACE_CHECK),
    _assumed("palpebral_fissure_length", "palpebral fissure length ex-en", ("ex_l", "en_l"), "soft",
             31.0, 1.5, 30.0, 1.5, check=_FACE_CHECK),
    _assumed("mouth_width", "mouth width ch-ch", ("ch_l", "ch_r"), "soft", 53.0, 3.5, 50.0, 3.2, check=_FACE_CHECK),
    _assumed("philtrum_length", "philtrum length sn-ls", ("sn", "ls"), "soft", 15.0, 2.0, 13.5, 1.8,
             check=_FACE_CHECK),
    _assumed("upper_lip_height", "upper lip height sn-sto", ("sn", "sto"), "soft", 22.5, 2.3, 20.5, 2.0,
             check=_FACE_CHECK),
    _assumed("upper_vermilion_height", "upper vermilion height ls-sto", ("ls", "sto"), "soft",
             8.5, 1.6, 8.0, 1.5, check=_FACE_CHECK),
    _assumed("lower_vermilion_height", "lower vermilion height sto-li", ("sto", "li"), "soft",
             9.5, 1.7, 9.0, 1.6, check=_FACE_CHECK),
]


# --------------------------------------------------------------------------------------------
# Correlations
# --------------------------------------------------------------------------------------------

_CORR_ASSUMED = ("assumption: correlation not taken from a source; a moderate-to-strong positive value "
                 "keeps sampled heads coherent (related dimensions grow together)")

CORRELATIONS: list[Correlation] = [
    Correlation("tissue", "upper_lip_margin", "lower_lip_margin", 0.763, _LEB18,
                "upper and lower lip thickness, sexes pooled"),
    Correlation("tissue", "mental_eminence", "gnathion", 0.784, _LEB18, "pogonion and gnathion, sexes pooled"),
    Correlation("tissue", "supra_m2", "sub_m2", 0.7, _CORR_ASSUMED,
                "Simpson & Henneberg 2002 report soft-tissue depths highly positively correlated with each "
                "other, without giving this pair"),
    Correlation("tissue", "gonion", "mid_ramus", 0.7, _CORR_ASSUMED),
    Correlation("tissue", "inferior_malar", "supra_m2", 0.6, _CORR_ASSUMED),
    Correlation("tissue", "glabella", "nasion", 0.6, _CORR_ASSUMED),
    Correlation("anthropometry", "sna", "snb", 0.7, _CORR_ASSUMED),
    Correlation("anthropometry", "cranial_length", "cranial_breadth", 0.2, _CORR_ASSUMED),
    Correlation("anthropometry", "bizygomatic_breadth", "bigonial_breadth", 0.6, _CORR_ASSUMED),
    Correlation("anthropometry", "total_anterior_face_height", "lower_anterior_face_height", 0.85, _CORR_ASSUMED),
    Correlation("anthropometry", "total_anterior_face_height", "upper_anterior_face_height", 0.7, _CORR_ASSUMED),
    Correlation("anthropometry", "ramus_height", "posterior_face_height", 0.8, _CORR_ASSUMED),
    Correlation("anthropometry", "mandibular_body_length", "mandibular_length", 0.8, _CORR_ASSUMED),
    Correlation("anthropometry", "intercanthal_width", "biocular_width", 0.6, _CORR_ASSUMED),
    Correlation("anthropometry", "interorbital_breadth", "intercanthal_width", 0.7, _CORR_ASSUMED),
    Correlation("anthropometry", "bizygomatic_breadth", "bizygomatic_breadth_soft", 0.9, _CORR_ASSUMED),
]


# --------------------------------------------------------------------------------------------
# 3. Condition presets
# --------------------------------------------------------------------------------------------

_SEV = {"mild": 1.5, "moderate": 2.5, "severe": 3.5}
_SEV_SOURCE = ("assumption: mild/moderate/severe = 1.5/2.5/3.5 SD placed around the 2 SD objective "
               "threshold of Elements of Morphology (Hall et al. 2009; Allanson et al. 2009): mild stays "
               "inside the normal range, moderate and severe lie beyond it")

CONDITIONS: list[ConditionPreset] = [
    ConditionPreset(
        id="hypertelorism", name="Hypertelorism (widely spaced eyes)",
        hpo=(("HP:0000316", "Hypertelorism"),),
        definition="Objective: interpupillary distance more than 2 SD above the mean (alternatively the "
                   "appearance of an increased interpupillary distance). The vocabulary has no pupil "
                   "landmark, so the preset widens the bony interorbital breadth, which carries both orbits "
                   "(and the pupils) apart.",
        definition_source=f"{_HA09}; {_EOM}; {_HPO}", hpo_source=f"{_HPO}; {_CLF}",
        measure="interorbital_breadth", direction=+1, severity_sd=dict(_SEV),
        also_shifts=(("intercanthal_width", 1.0), ("biocular_width", 0.5)),
        severity_source=_SEV_SOURCE,
        note="Elements of Morphology advises the objective criterion only up to 15 years; for adults the "
             "subjective definition applies. Distinguish from telecanthus (inner canthi only)."),
    ConditionPreset(
        id="hypotelorism", name="Hypotelorism (closely spaced eyes)",
        hpo=(("HP:0000601", "Hypotelorism"),),
        definition="Objective: interpupillary distance more than 2 SD below the mean (or below the 3rd "
                   "centile); operationalised on the bony interorbital breadth as for hypertelorism.",
        definition_source=f"{_HA09}; {_EOM}", hpo_source=f"{_CLF}; {_HPO}",
        measure="interorbital_breadth", direction=-1, severity_sd=dict(_SEV),
        also_shifts=(("intercanthal_width", 1.0), ("biocular_width", 0.5)),
        severity_source=_SEV_SOURCE),
    ConditionPreset(
        id="micrognathia", name="Micrognathia (small mandible)",
        hpo=(("HP:0000347", "Micrognathia"),),
        definition="Developmental hypoplasia of the mandible (HPO). No objective SD criterion was "
                   "retrieved; the general 2 SD convention of Elements of Morphology is applied to the "
                   "mandibular body length.",
        definition_source=f"{_HPO}; {_AL09}", hpo_source=_HPO,
        measure="mandibular_body_length", direction=-1, severity_sd=dict(_SEV),
        also_shifts=(("mandibular_length", 1.0), ("ramus_height", 0.5)),
        severity_source=_SEV_SOURCE,
        note="Code retrognathia separately if the mandible is also set back (microretrognathia)."),
    ConditionPreset(
        id="retrognathia", name="Retrognathia (posteriorly positioned mandible)",
        hpo=(("HP:0000278", "Retrognathia"),),
        definition="Subjective: posteriorly positioned lower jaw, set back from the plane of the face in "
                   "profile. Operationalised as a smaller SNB angle (and a larger ANB).",
        definition_source=f"{_EOM}; {_AL09}", hpo_source=_HPO,
        measure="snb", direction=-1, severity_sd=dict(_SEV),
        also_shifts=(("anb", -1.0),),
        severity_source=_SEV_SOURCE,
        note="the ANB weight -1 means ANB rises while SNB falls (in ANB SD units; an approximation)"),
    ConditionPreset(
        id="midface_retrusion", name="Midface retrusion (midface hypoplasia)",
        hpo=(("HP:0011800", "Midface retrusion"),),
        definition="Subjective: posterior positioning and/or vertical shortening of the infraorbital and "
                   "perialar regions, or increased concavity of the face. Operationalised as a smaller SNA "
                   "angle with a shorter upper face and palate.",
        definition_source=f"{_EOM}; {_AL09}", hpo_source=_HPO,
        measure="sna", direction=-1, severity_sd=dict(_SEV),
        also_shifts=(("upper_anterior_face_height", 0.5), ("palatal_length", 0.5), ("anb", 1.0)),
        severity_source=_SEV_SOURCE,
        note="with a normal mandible this gives the appearance of relative prognathism"),
    ConditionPreset(
        id="mandibular_prognathia", name="Mandibular prognathia",
        hpo=(("HP:0000303", "Mandibular prognathia"),),
        definition="Anterior protrusion of the mandible relative to the face; the Elements of Morphology "
                   "text was not retrieved. Operationalised as a larger SNB angle (ANB falls) and a longer "
                   "mandible.",
        definition_source="assumption: HPO label verified, defining text not retrieved; operational "
                          "definition chosen here",
        hpo_source=_HPO,
        measure="snb", direction=+1, severity_sd=dict(_SEV),
        also_shifts=(("anb", -1.0), ("mandibular_length", 0.5)),
        severity_source=_SEV_SOURCE),
    ConditionPreset(
        id="macrocephaly", name="Macrocephaly",
        hpo=(("HP:0000256", "Macrocephaly"),),
        definition="Occipitofrontal (head) circumference greater than the 97th centile (about +1.88 SD). "
                   "Cranial length and breadth are enlarged with it.",
        definition_source=f"{_HPO}; {_AL09}", hpo_source=_HPO,
        measure="head_circumference", direction=+1, severity_sd=dict(_SEV), threshold_sd=1.88,
        also_shifts=(("cranial_length", 1.0), ("cranial_breadth", 1.0)),
        severity_source=_SEV_SOURCE,
        note="97th centile = +1.881 SD of a normal distribution; the mild preset (1.5 SD) stays below it"),
    ConditionPreset(
        id="long_philtrum", name="Long philtrum",
        hpo=(("HP:0000343", "Long philtrum"),),
        definition="Objective: distance between nasal base and the midline upper-lip vermilion border "
                   "more than 2 SD above the mean (the mirror of the verified 'Philtrum, Short' criterion, "
                   "which is more than 2 SD below the mean).",
        definition_source=f"{_HE09}; {_EOM}", hpo_source=_HPO,
        measure="philtrum_length", direction=+1, severity_sd=dict(_SEV),
        also_shifts=(("upper_lip_height", 0.7),),
        severity_source=_SEV_SOURCE,
        note="often combined with thin_upper_lip_vermilion; code the two separately"),
    ConditionPreset(
        id="thin_upper_lip_vermilion", name="Thin upper lip vermilion",
        hpo=(("HP:0000219", "Thin upper lip vermilion"),),
        definition="Objective: height of the upper-lip vermilion in the midline more than 2 SD below the "
                   "mean (the mirror of the verified 'Vermilion, Upper Lip, Thick' criterion); usually "
                   "judged subjectively.",
        definition_source=f"{_CA09}; {_EOM}", hpo_source=_HPO,
        measure="upper_vermilion_height", direction=-1, severity_sd=dict(_SEV),
        severity_source=_SEV_SOURCE),
    ConditionPreset(
        id="short_palpebral_fissure", name="Short palpebral fissure",
        hpo=(("HP:0012745", "Short palpebral fissure"),),
        definition="Objective: distance between the medial and lateral canthi more than 2 SD below the mean "
                   "for age.",
        definition_source=f"{_CLF}; {_HA09}", hpo_source=f"{_CLF}; {_HPO}",
        measure="palpebral_fissure_length", direction=-1, severity_sd=dict(_SEV),
        severity_source=_SEV_SOURCE),
    ConditionPreset(
        id="hemifacial_microsomia", name="Hemifacial microsomia (unilateral mandibular hypoplasia)",
        hpo=(("HP:0000324", "Facial asymmetry"),),
        definition="Facial asymmetry from unilateral underdevelopment of the mandibular ramus. HPO has no "
                   "'hemifacial microsomia' term in the sources checked; the preset is coded with Facial "
                   "asymmetry and shortens the ramus on one (the left) side only.",
        definition_source="assumption: no objective criterion retrieved; unilateral ramus shortening chosen "
                          "as the operational definition",
        hpo_source=_HPO,
        measure="ramus_height", direction=-1, severity_sd=dict(_SEV), side="unilateral",
        also_shifts=(("mandibular_body_length", 0.5),),
        severity_source=_SEV_SOURCE),
]


# --------------------------------------------------------------------------------------------
# Lookups and helpers
# --------------------------------------------------------------------------------------------

_SEX_ALIASES = {"m": "M", "male": "M", "f": "F", "female": "F", "unknown": "unknown", "u": "unknown"}


def _norm_sex(sex: str) -> str:
    key = str(sex).strip().lower()
    if key not in _SEX_ALIASES:
        raise ParameterError(f"sex {sex!r} is not one of 'M', 'F', 'unknown'", parameter="sex")
    return _SEX_ALIASES[key]


def _sex_value(m: float, f: float, sm: float, sf: float, sex: str) -> tuple[float, float]:
    """(mean, sd) for a sex; 'unknown' is the 50:50 mixture of the two sexes."""
    s = _norm_sex(sex)
    if s == "M":
        return m, sm
    if s == "F":
        return f, sf
    mean = (m + f) / 2.0
    var = (sm * sm + sf * sf) / 2.0 + ((m - f) / 2.0) ** 2
    return mean, math.sqrt(var)


def _check_number(name: str, value, lo: float, hi: float) -> float:
    """``value`` as a float if it is a positive number within ``lo``-``hi``, else a ParameterError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ParameterError(f"{name} must be a number, got {value!r}", parameter=name.lower())
    v = float(value)
    if math.isnan(v) or v <= 0:
        raise ParameterError(f"{name} must be a positive number, got {value!r}", parameter=name.lower())
    if not lo <= v <= hi:
        raise ParameterError(f"{name} {value!r} is outside the supported range {lo:g}-{hi:g}",
                             parameter=name.lower())
    return v


_TISSUE_INDEX: dict[str, TissueDepth] = {}
for _t in TISSUE_DEPTHS:
    for _k in (_t.key, _t.bony_id, _t.soft_id):
        if _k:
            if _k in _TISSUE_INDEX:
                raise RuntimeError(f"duplicate tissue depth key {_k!r}")
            _TISSUE_INDEX[_k] = _t
_MEASURES: dict[str, Measurement] = {m.id: m for m in ANTHROPOMETRY}
_CONDITIONS: dict[str, ConditionPreset] = {c.id: c for c in CONDITIONS}
if len(_MEASURES) != len(ANTHROPOMETRY) or len(_CONDITIONS) != len(CONDITIONS):
    raise RuntimeError("duplicate measurement or condition id")


def _mirror_left(ident: str) -> str:
    return ident[:-2] + "_l" if ident.endswith("_r") else ident


def tissue_entry(ident: str) -> TissueDepth:
    """The tissue-depth entry for a table key ("supraorbital"), a bony id ("zy_r") or a soft id."""
    if isinstance(ident, str):
        for cand in (ident, _mirror_left(ident)):
            if cand in _TISSUE_INDEX:
                return _TISSUE_INDEX[cand]
    known = ", ".join(sorted(t.key for t in TISSUE_DEPTHS))
    bony = ", ".join(t.bony_id for t in TISSUE_DEPTHS if t.bony_id)
    raise ParameterError(f"no soft-tissue depth for {ident!r}; known keys: {known}; bony ids: {bony} "
                         f"(right-side ids mirror the left)", parameter="bony_id")


def tissue_depth(bony_id: str, sex: str = "unknown", age: float | None = None,
                 bmi: float | None = None) -> tuple[float, float]:
    """(mean, sd) soft-tissue thickness in mm over a bony landmark for a sex, age and BMI.

    ``bony_id`` is a vocabulary id (``"pog"``, ``"zy_r"``) or a table key (``"supraorbital"``).
    ``sex`` is "M", "F" or "unknown" (the 50:50 mixture). The mean is linear in age and BMI
    around the entry's reference point (``ref_age``, ``ref_bmi``; ``None`` keeps the reference
    value) and never below :data:`MIN_TISSUE_DEPTH_MM`; the SD is the table's (population) SD.
    Raises :class:`medface.errors.ParameterError` for BMI <= 0 or outside 10-60 kg/m^2, age
    outside 18-100 years, an unknown sex or a landmark without a depth entry.
    """
    entry = tissue_entry(bony_id)
    mean, sd = _sex_value(entry.mean_male, entry.mean_female, entry.sd_male, entry.sd_female, sex)
    b = entry.ref_bmi if bmi is None else _check_number("BMI", bmi, *BMI_RANGE)
    a = entry.ref_age if age is None else _check_number("age", age, *AGE_RANGE)
    mean += entry.bmi_slope * (b - entry.ref_bmi) + entry.age_slope * (a - entry.ref_age)
    return max(mean, MIN_TISSUE_DEPTH_MM), sd


def measurement(measure_id: str) -> Measurement:
    """The norm entry of a measurement id (:data:`ANTHROPOMETRY`); ParameterError if unknown."""
    if measure_id in _MEASURES:
        return _MEASURES[measure_id]
    raise ParameterError(f"unknown measurement {measure_id!r}; known: {', '.join(_MEASURES)}",
                         parameter="measure_id")


def norm(measure_id: str, sex: str = "unknown") -> tuple[float, float]:
    """(mean, sd) of an anthropometric/cephalometric measurement for "M", "F" or "unknown"."""
    m = measurement(measure_id)
    return _sex_value(m.mean_male, m.mean_female, m.sd_male, m.sd_female, sex)


def condition(condition_id: str) -> ConditionPreset:
    """The preset of a condition id (:data:`CONDITIONS`); ParameterError if unknown."""
    if condition_id in _CONDITIONS:
        return _CONDITIONS[condition_id]
    raise ParameterError(f"unknown condition {condition_id!r}; known: {', '.join(_CONDITIONS)}",
                         parameter="condition")


def condition_targets(condition_id: str, severity: str, sex: str = "unknown") -> dict[str, float]:
    """Target values (mm or deg) of every measurement a preset moves: mean + shift * SD."""
    preset = condition(condition_id)
    out = {}
    for mid, shift in preset.shifts(severity).items():
        mean, sd = norm(mid, sex)
        out[mid] = mean + shift * sd
    return out


def assumptions() -> list[tuple[str, str, str]]:
    """(table, item, assumption text) for every value that is not from a source."""
    out = []
    for t in TISSUE_DEPTHS:
        if is_assumption(t.source):
            out.append(("tissue depth", t.key, "mean and SD: " + t.source))
        if is_assumption(t.slope_source):
            out.append(("tissue depth", t.key, "BMI and age slopes: " + t.slope_source))
        if is_assumption(t.ref_source):
            out.append(("tissue depth", t.key, "reference age/BMI: " + t.ref_source))
    for m in ANTHROPOMETRY:
        if is_assumption(m.source):
            out.append(("anthropometry", m.id, "mean and SD: " + m.source))
        elif is_assumption(m.sd_source):
            out.append(("anthropometry", m.id, "SD: " + m.sd_source))
    for c in CORRELATIONS:
        if is_assumption(c.source):
            out.append(("correlation", f"{c.a} ~ {c.b}", c.source))
    for p in CONDITIONS:
        for what, text in (("definition", p.definition_source), ("severities", p.severity_source)):
            if is_assumption(text):
                out.append(("condition", p.id, f"{what}: {text}"))
    return out


# --------------------------------------------------------------------------------------------
# Documentation
# --------------------------------------------------------------------------------------------

def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value).replace("|", "\\|")


def _src(source: str) -> str:
    return "assumption (see Assumptions)" if is_assumption(source) else _cell(source)


_DOC_INTRO = """\
# Phantom reference data

This page is generated from `medface/phantom/tables.py` by
`python -m medface.phantom.tables --write docs/phantom-references.md`; do not edit it by hand.

The synthetic head of `medface.phantom` takes its soft-tissue depths, shape norms and
condition presets from these tables. Every value names its source: a publication in the
reference list, or an explicit assumption. **Status: {n_ver} of {n_all} numeric entries come from
a source; the rest are assumptions and are listed under [Assumptions](#assumptions).** A value is
only marked as sourced when it was read in the source (or in the named secondary source) during
the research for this table.

What the research found. The primary soft-tissue-depth sources (De Greef et al. 2006 and 2009,
the Stephan T-Tables, and the CT studies of Chung et al. 2015, Cha 2013 and Toneva et al. 2018)
are listed, but only their abstracts could be read with the project's search tools, not their
tables; their depth means, SDs and BMI/age coefficients are therefore *not* in this module. The
soft-tissue depths are pooled-sex placeholders marked as assumptions, except rhinion (Lebanese
adults, from an abstract). The verified shape norms are the cephalometric standards of Riolo et
al. (1974, Michigan, age 16), Steiner's angle norms (means only), and the pooled intercanthal
width of White adults. All HPO ids and labels below were checked against HPO-derived listings.
Replace an assumption by editing the entry, setting its source to the reference key and
`verified=True`, and regenerating this page.
"""


def markdown_document() -> str:
    """The whole of docs/phantom-references.md."""
    n_ver = sum(t.verified for t in TISSUE_DEPTHS) + sum(m.verified for m in ANTHROPOMETRY)
    n_all = len(TISSUE_DEPTHS) + len(ANTHROPOMETRY)
    lines = [_DOC_INTRO.format(n_ver=n_ver, n_all=n_all)]

    lines += ["## 1. Soft-tissue thickness", "",
              "Adult depth (mm) from the bony landmark to the skin over it. `tissue_depth(bony_id, sex, "
              "age, bmi)` returns `mean + bmi_slope*(bmi - ref BMI) + age_slope*(age - ref age)` (floor "
              f"{MIN_TISSUE_DEPTH_MM:g} mm) and the SD; sex 'unknown' is the 50:50 mixture. BMI must lie in "
              f"{BMI_RANGE[0]:g}-{BMI_RANGE[1]:g} kg/m², age in {AGE_RANGE[0]:g}-{AGE_RANGE[1]:g} years. "
              "Bilateral sites list the left id; the right id mirrors it.", "",
              "| key | site | bony id | soft id | male mean ± SD | female mean ± SD | BMI slope (mm per "
              "kg/m²) | age slope (mm/yr) | ref age / BMI | verified | source | note |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for t in TISSUE_DEPTHS:
        lines.append(
            f"| `{t.key}` | {_cell(t.name)} | {_cell(t.bony_id)} | {_cell(t.soft_id)} | "
            f"{t.mean_male:g} ± {t.sd_male:g} | {t.mean_female:g} ± {t.sd_female:g} | {t.bmi_slope:g} | "
            f"{t.age_slope:g} | {t.ref_age:g} / {t.ref_bmi:g} | {'yes' if t.verified else 'no'} | "
            f"{_src(t.source)} | {_cell(t.note)} |")
    lines += ["", "BMI and age slopes: all assumptions (see Assumptions). Sources to check the placeholders "
              "against: " + ", ".join(_FSTT_CHECK) + ".", ""]

    lines += ["## 2. Anthropometric and cephalometric norms", "",
              "`norm(measure_id, sex)` returns (mean, SD). `kind` bony = skull or cephalogram, soft = living "
              "face.", "",
              "| id | measurement | landmarks | kind | units | male mean ± SD | female mean ± SD | "
              "population | verified | source (mean) | source (SD) | note |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for m in ANTHROPOMETRY:
        lms = ", ".join(f"`{x}`" for x in m.landmarks) or "-"
        lines.append(
            f"| `{m.id}` | {_cell(m.description)} | {lms} | {m.kind} | {m.units} | "
            f"{m.mean_male:g} ± {m.sd_male:g} | {m.mean_female:g} ± {m.sd_female:g} | {_cell(m.population)} | "
            f"{'yes' if m.verified else 'no'} | {_src(m.source)} | {_src(m.sd_source)} | {_cell(m.note)} |")
    lines.append("")

    lines += ["## Correlations", "", "| table | a | b | r | source | note |", "|---|---|---|---|---|---|"]
    for c in CORRELATIONS:
        lines.append(f"| {c.table} | `{c.a}` | `{c.b}` | {c.r:g} | {_src(c.source)} | {_cell(c.note)} |")
    lines.append("")

    lines += ["## 3. Condition presets", "",
              "Shift of `measure` = direction × severity SD of the normal population (mild/moderate/severe); "
              "`also shifts` move by weight × that shift in their own SD. `condition_targets(id, severity, "
              "sex)` gives the target values.", "",
              "| id | HPO | definition | threshold (SD) | measure | direction | mild / moderate / severe (SD) | "
              "also shifts | side | definition source | HPO checked in | note |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for p in CONDITIONS:
        hpo = "; ".join(f"{i} {label}" for i, label in p.hpo)
        sev = " / ".join(f"{p.severity_sd[s]:g}" for s in SEVERITIES)
        also = ", ".join(f"`{k}` ×{w:g}" for k, w in p.also_shifts) or "-"
        lines.append(
            f"| `{p.id}` | {hpo} | {_cell(p.definition)} | {p.threshold_sd:g} | `{p.measure}` | "
            f"{'+' if p.direction > 0 else '-'} | {sev} | {also} | {p.side} | {_src(p.definition_source)} | "
            f"{_src(p.hpo_source)} | {_cell(p.note)} |")
    lines.append("")

    lines += ["## Assumptions", "",
              "Every value below was *not* read from a source. Each is a placeholder chosen to be "
              "plausible; replace it when the named publications can be read. Items sharing an "
              "assumption are grouped.", ""]
    groups: dict[tuple[str, str], list[str]] = {}
    for table, item, text in assumptions():
        what, _, reason = text.partition(": ")
        groups.setdefault((table, reason), []).append(f"`{item}` ({what})")
    for (table, reason), items in groups.items():
        lines.append(f"- **{table}**: {', '.join(items)}.  ")
        lines.append(f"  {reason}")
    lines.append("")

    lines += ["## References", ""]
    lines += [f"- **{k}**: {v}" for k, v in REFERENCES.items()]
    return "\n".join(lines) + "\n"


def _main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "--write":
        with open(argv[1], "w", encoding="utf-8") as f:
            f.write(markdown_document())
        print(f"wrote {argv[1]}")
        return 0
    if argv:
        print("usage: python -m medface.phantom.tables [--write docs/phantom-references.md]", file=sys.stderr)
        return 2
    sys.stdout.write(markdown_document())
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
