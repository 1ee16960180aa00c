"""The medface landmark vocabulary: craniometric (bony) and soft-tissue landmarks with stable ids.

Every landmark file, phantom, cephalometric analysis and reconstruction in medface names its
points with the ids defined here (they are the control-point labels of 3D Slicer markups).
The vocabulary is part of the data model (:class:`medface.data.Landmarks` checks ids against
it); :mod:`medface.anatomy.landmarks` re-exports it with the documentation tables. This module
imports only the standard library (and medface's own error classes): it is cheap to load.

Id conventions
--------------
* An id is lowercase ASCII and matches ``^[a-z][a-z0-9_]*$``. Ids are stable: once released an
  id is never renamed or given another meaning.
* Coordinates are LPS millimetres, so the patient's left is +x. A bilateral landmark has one id
  per side, ending in ``_l`` (patient's left) or ``_r`` (patient's right): ``go_l``, ``go_r``.
  Its ``mirror`` is the other side's id. Midline landmarks carry no side suffix and mirror to
  themselves.
* Craniometric ids are the classical abbreviations (Martin & Saller 1957; cephalometric ones
  from Downs 1948 and Steiner 1953): ``n``, ``g``, ``or_l``, ``pog``. Two deliberate choices:
  ``b`` is the cephalometric B point (supramentale), so bregma is ``br``; lambda is ``la``.
  Martin's bony "alare" is ``apl_l``/``apl_r`` (piriform aperture, lateral point) because
  ``al`` is Farkas' soft-tissue alare.
* A soft-tissue landmark that carries the *same name* as a bony landmark (the soft-tissue
  analogue: soft-tissue nasion, pogonion, zygion ...) has the bony id with ``_s`` appended,
  before any side suffix: ``n_s``, ``pog_s``, ``zy_s_l``, ``go_s_r``. ``_s`` is the ASCII form
  of the prime that Caple & Stephan (2016) and cephalometrics use (N', Pog').
* A soft-tissue landmark with a *name of its own* uses Farkas' (1994) abbreviation unchanged,
  with no ``_s``: ``prn``, ``sn``, ``ls``, ``li``, ``sto``, ``sl``, ``ch_l``, ``en_r``, ``t_l``
  (Farkas' columella point c' is ``c``). The soft-tissue B point is therefore ``sl``
  (sublabiale); the soft-tissue A point, which has no Farkas name, is ``a_s``.

Names and aliases
-----------------
:func:`resolve` maps what people type to an id, case-insensitively and ignoring punctuation
(``-``, ``_``, ``.``, ``,``, brackets): the id, the ``name``, and every alias. For a bilateral
landmark the name and aliases are side-free ("gonion", "Go") and must be qualified with a
side word before or after: "Go L", "left gonion", "gonion (right)", "go_r". A soft-tissue
analogue is also found by qualifying its bony landmark: "soft tissue pogonion",
"pogonion soft tissue", "Pog'" all resolve to ``pog_s``.

Only the ids are accepted as ids: :func:`is_known` and :func:`get` take exact ids; use
:func:`resolve` first for names.

Run ``python -m medface.anatomy.landmarks --write docs/landmarks.md`` to regenerate the tables
and references in the documentation after changing an entry here.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from ..errors import InputError, ParameterError

__all__ = [
    "LandmarkDef", "UnknownLandmarkError", "VOCABULARY", "KINDS", "SIDES", "REGIONS", "REFERENCES",
    "get", "is_known", "resolve", "mirror_id", "counterpart", "ids", "craniometric_ids",
    "soft_tissue_ids", "bilateral_pairs",
]

KINDS = ("craniometric", "soft_tissue")
SIDES = ("midline", "left", "right")
REGIONS = ("cranial vault", "cranial base", "orbit", "nose", "maxilla", "zygoma", "mandible", "lips",
           "chin", "ear/temporal")

_ID_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_SIDE_SUFFIX = {"left": "_l", "right": "_r"}


@dataclass(frozen=True)
class LandmarkDef:
    """One landmark of the vocabulary.

    ``kind`` is "craniometric" (on bone) or "soft_tissue" (on skin); ``side`` is "midline",
    "left" or "right" (the patient's); ``mirror`` is the id of the other side's landmark
    (``None`` for a midline landmark); ``source`` names the references, separated by "; ",
    each a key of :data:`REFERENCES`. ``aliases`` are other names and abbreviations accepted
    by :func:`resolve`; for a bilateral landmark they are side-free.
    """

    id: str
    name: str
    kind: str
    region: str
    side: str
    definition: str
    source: str
    mirror: str | None = None
    aliases: tuple[str, ...] = ()

    def __post_init__(self):
        if not _ID_RE.match(self.id):
            raise ValueError(f"landmark id {self.id!r} must match {_ID_RE.pattern}")
        if self.kind not in KINDS:
            raise ValueError(f"landmark {self.id!r}: kind {self.kind!r} is not one of {KINDS}")
        if self.side not in SIDES:
            raise ValueError(f"landmark {self.id!r}: side {self.side!r} is not one of {SIDES}")
        if self.region not in REGIONS:
            raise ValueError(f"landmark {self.id!r}: region {self.region!r} is not one of {REGIONS}")
        suffix = _SIDE_SUFFIX.get(self.side)
        if suffix is not None:
            if not self.id.endswith(suffix):
                raise ValueError(f"landmark {self.id!r} is on the {self.side} but does not end in {suffix!r}")
            if not self.mirror:
                raise ValueError(f"bilateral landmark {self.id!r} needs a mirror id")
        elif self.id.endswith(("_l", "_r")) or self.mirror not in (None, self.id):
            raise ValueError(f"midline landmark {self.id!r} must not have a side suffix or another mirror")
        if not self.definition.strip() or not self.source.strip():
            raise ValueError(f"landmark {self.id!r} needs a definition and a source")
        object.__setattr__(self, "aliases", tuple(self.aliases))

    @property
    def display_name(self) -> str:
        """The name with the side for bilateral landmarks: "gonion (left)"."""
        return self.name if self.side == "midline" else f"{self.name} ({self.side})"

    @property
    def base(self) -> str:
        """The id without its side suffix (``go`` for ``go_l``; the id itself on the midline)."""
        return self.id if self.side == "midline" else self.id[:-2]


class UnknownLandmarkError(KeyError, InputError):
    """A landmark id or name is not in the vocabulary (or is ambiguous).

    It is a :class:`KeyError` (a failed lookup) and an :class:`medface.errors.InputError` (the
    command line reports it without a traceback). ``suggestions`` lists likely ids.
    """

    def __init__(self, message: str, suggestions: list[str] | tuple[str, ...] = ()):
        self.suggestions = list(suggestions)
        InputError.__init__(self, message)

    def __str__(self) -> str:  # KeyError would show the repr of the message
        return self.message


# --------------------------------------------------------------------------------------------
# References (short key used in ``source`` -> full citation)
# --------------------------------------------------------------------------------------------

_MS = "Martin & Saller 1957"
_BU = "Buikstra & Ubelaker 1994"
_FA = "Farkas 1994"
_DO = "Downs 1948"
_ST = "Steiner 1953"
_HO = "Holdaway 1983"
_LB = "Legan & Burstone 1980"
_SW = "Swennen et al. 2006"
_CS = "Caple & Stephan 2016"

REFERENCES: dict[str, str] = {
    _MS: "Martin R, Saller K. Lehrbuch der Anthropologie in systematischer Darstellung, 3rd ed., "
         "vol. 1. Stuttgart: Gustav Fischer; 1957.",
    _BU: "Buikstra JE, Ubelaker DH (eds). Standards for Data Collection from Human Skeletal Remains. "
         "Arkansas Archeological Survey Research Series No. 44. Fayetteville: Arkansas Archeological "
         "Survey; 1994.",
    _FA: "Farkas LG (ed). Anthropometry of the Head and Face, 2nd ed. New York: Raven Press; 1994.",
    _DO: "Downs WB. Variations in facial relationships: their significance in treatment and prognosis. "
         "American Journal of Orthodontics 1948;34(10):812-840.",
    _ST: "Steiner CC. Cephalometrics for you and me. American Journal of Orthodontics "
         "1953;39(10):729-755.",
    _HO: "Holdaway RA. A soft-tissue cephalometric analysis and its use in orthodontic treatment "
         "planning. Part I. American Journal of Orthodontics 1983;84(1):1-28.",
    _LB: "Legan HL, Burstone CJ. Soft tissue cephalometric analysis for orthognathic surgery. "
         "Journal of Oral Surgery 1980;38(10):744-751.",
    _SW: "Swennen GRJ, Schutyser F, Hausamen JE. Three-Dimensional Cephalometry: A Color Atlas and "
         "Manual. Berlin, Heidelberg: Springer; 2006.",
    _CS: "Caple J, Stephan CN. A standardized nomenclature for craniofacial and facial anthropometry. "
         "International Journal of Legal Medicine 2016;130(3):863-879. doi:10.1007/s00414-015-1292-1.",
}


def _src(*keys: str) -> str:
    return "; ".join(keys)


# --------------------------------------------------------------------------------------------
# The vocabulary
# --------------------------------------------------------------------------------------------

_C, _S = "craniometric", "soft_tissue"
_ENTRIES: list[LandmarkDef] = []


def _mid(id_, name, kind, region, definition, source, aliases=()):
    _ENTRIES.append(LandmarkDef(id_, name, kind, region, "midline", definition, source, None, tuple(aliases)))


def _pair(base, name, kind, region, definition, source, aliases=()):
    for side, own, other in (("left", "_l", "_r"), ("right", "_r", "_l")):
        _ENTRIES.append(LandmarkDef(base + own, name, kind, region, side, definition, source, base + other,
                                    tuple(aliases)))


# Craniometric, midline ---------------------------------------------------------------------
_mid("g", "glabella", _C, "cranial vault",
     "The most anterior midline point on the frontal bone between the superciliary arches, above the "
     "frontonasal suture, with the skull in the Frankfurt horizontal.",
     _src(_MS, _BU, _CS), ["Gl"])
_mid("n", "nasion", _C, "nose",
     "The midline point where the frontonasal suture meets the internasal suture (on a lateral "
     "cephalogram, the most anterior point of the frontonasal suture).",
     _src(_MS, _BU, _ST), ["N", "Na"])
_mid("v", "vertex", _C, "cranial vault",
     "The highest midline point of the cranial vault with the skull oriented in the Frankfurt horizontal.",
     _src(_MS, _CS))
_mid("br", "bregma", _C, "cranial vault",
     "The point where the coronal suture meets the sagittal suture.",
     _src(_MS, _BU))
_mid("la", "lambda", _C, "cranial vault",
     "The point where the sagittal suture meets the lambdoid suture.",
     _src(_MS, _BU), ["l"])
_mid("op", "opisthocranion", _C, "cranial vault",
     "The midline point on the occipital bone farthest from glabella, the posterior end of maximum "
     "cranial length.",
     _src(_MS, _BU))
_mid("i", "inion", _C, "cranial vault",
     "The midline point on the external occipital protuberance where the superior nuchal lines meet.",
     _src(_MS, _BU), ["In"])
_mid("o", "opisthion", _C, "cranial base",
     "The midpoint of the posterior margin of the foramen magnum.",
     _src(_MS, _BU))
_mid("ba", "basion", _C, "cranial base",
     "The midpoint of the anterior margin of the foramen magnum.",
     _src(_MS, _BU, _SW))
_mid("s", "sella", _C, "cranial base",
     "The centre of the sella turcica (hypophyseal fossa), a constructed point.",
     _src(_ST, _SW), ["S", "sella turcica", "sella point"])
_mid("rhi", "rhinion", _C, "nose",
     "The most anterior-inferior midline point of the internasal suture, at the free lower ends of the "
     "nasal bones.",
     _src(_MS, _CS), ["Rh"])
_mid("ns", "nasospinale", _C, "nose",
     "The point where a line tangent to the lowest points of the inferior margins of the piriform "
     "aperture crosses the midsagittal plane.",
     _src(_MS, _BU))
_mid("ans", "anterior nasal spine", _C, "maxilla",
     "The tip of the anterior nasal spine of the maxilla.",
     _src(_MS, _SW), ["ANS", "acanthion", "spina nasalis anterior"])
_mid("pns", "posterior nasal spine", _C, "maxilla",
     "The tip of the posterior nasal spine, the most posterior midline point of the hard palate.",
     _src(_SW), ["PNS"])
_mid("a", "A point", _C, "maxilla",
     "The deepest midline point on the concave anterior contour of the maxilla between the anterior "
     "nasal spine and prosthion.",
     _src(_DO, _SW), ["A", "point A", "subspinale", "Ss"])
_mid("pr", "prosthion", _C, "maxilla",
     "The most anterior midline point of the maxillary alveolar process, between the upper central "
     "incisors.",
     _src(_MS, _BU), ["Pr", "supradentale", "Sd"])
_mid("id", "infradentale", _C, "mandible",
     "The most anterior midline point of the mandibular alveolar process, between the lower central "
     "incisors.",
     _src(_MS, _BU), ["Id"])
_mid("b", "B point", _C, "mandible",
     "The deepest midline point on the concave anterior contour of the mandibular symphysis between "
     "infradentale and pogonion.",
     _src(_DO, _SW), ["B", "point B", "supramentale"])
_mid("pog", "pogonion", _C, "chin",
     "The most anterior midline point of the bony chin (mental protuberance).",
     _src(_MS, _DO, _SW), ["Pog", "Pg"])
_mid("gn", "gnathion", _C, "chin",
     "The midline point on the outline of the bony chin midway between pogonion and menton (its most "
     "anterior-inferior point).",
     _src(_DO, _ST, _SW), ["Gn"])
_mid("me", "menton", _C, "chin",
     "The lowest point on the outline of the mandibular symphysis.",
     _src(_DO, _SW), ["Me", "gnathion (Martin)"])

# Craniometric, bilateral -------------------------------------------------------------------
_pair("or", "orbitale", _C, "orbit",
      "The lowest point on the inferior margin of the orbit.",
      _src(_MS, _DO, _BU), ["Or"])
_pair("po", "porion", _C, "ear/temporal",
      "The uppermost point on the margin of the external acoustic meatus (anatomical porion).",
      _src(_MS, _DO, _SW), ["Po", "anatomical porion"])
_pair("go", "gonion", _C, "mandible",
      "The point on the angle of the mandible where the bisector of the angle between the tangents to "
      "the posterior border of the ramus and the inferior border of the body meets the bone.",
      _src(_MS, _SW), ["Go"])
_pair("co", "condylion", _C, "mandible",
      "The most superior point on the head of the mandibular condyle.",
      _src(_SW), ["Co", "condylion superius"])
_pair("cor", "coronoid tip", _C, "mandible",
      "The tip, the most superior point, of the coronoid process of the mandible.",
      _src(_MS, _SW), ["coronion", "Kr", "coronoid process tip"])
_pair("zy", "zygion", _C, "zygoma",
      "The most lateral point on the outer surface of the zygomatic arch, the end point of bizygomatic "
      "breadth.",
      _src(_MS, _BU), ["Zy"])
_pair("zm", "zygomaxillare", _C, "zygoma",
      "The lowest point of the zygomaticomaxillary suture on the anterior surface of the face.",
      _src(_MS, _BU), ["Zm"])
_pair("ju", "jugale", _C, "zygoma",
      "The point at the vertex of the angle between the posterior border of the frontal process and the "
      "upper border of the temporal process of the zygomatic bone.",
      _src(_MS), ["Ju"])
_pair("eu", "euryon", _C, "cranial vault",
      "The most lateral point of the cranial vault (parietal bone or upper squamous temporal), the end "
      "point of maximum cranial breadth.",
      _src(_MS, _BU), ["Eu"])
_pair("ft", "frontotemporale", _C, "cranial vault",
      "The most anteromedial point on the temporal line of the frontal bone, the end point of minimum "
      "frontal breadth.",
      _src(_MS, _BU), ["Ft"])
_pair("ast", "asterion", _C, "cranial vault",
      "The point where the lambdoid, parietomastoid and occipitomastoid sutures meet.",
      _src(_MS, _BU), ["Ast"])
_pair("fmo", "frontomalare orbitale", _C, "orbit",
      "The point where the frontozygomatic suture crosses the orbital (inner) margin of the lateral "
      "orbital rim.",
      _src(_MS, _BU), ["Fmo"])
_pair("fmt", "frontomalare temporale", _C, "orbit",
      "The most lateral point of the frontozygomatic suture, on the temporal (outer) margin of the "
      "lateral orbital rim.",
      _src(_MS, _BU), ["Fmt"])
_pair("d", "dacryon", _C, "orbit",
      "The point on the medial orbital wall where the frontal bone, the lacrimal bone and the frontal "
      "process of the maxilla meet.",
      _src(_MS, _BU), ["D"])
_pair("mf", "maxillofrontale", _C, "orbit",
      "The point where the anterior lacrimal crest (the medial orbital margin) meets the frontomaxillary "
      "suture.",
      _src(_MS, _BU), ["Mf"])
_pair("ek", "ectoconchion", _C, "orbit",
      "The point on the anterior surface of the lateral orbital margin where it is crossed by the line "
      "that bisects the orbit along its long axis (the lateral end of orbital breadth).",
      _src(_MS, _BU), ["Ek", "Ec"])
_pair("apl", "piriform aperture lateral point", _C, "nose",
      "The most lateral point on the margin of the piriform (nasal) aperture.",
      _src(_MS, _BU), ["bony alare", "alare (bony)", "apertura piriformis lateralis"])
_pair("ecm", "ectomolare", _C, "maxilla",
      "The most lateral point on the buccal surface of the maxillary alveolar process, usually opposite "
      "the second molar.",
      _src(_MS, _BU), ["Ecm"])
_pair("ms", "mastoidale", _C, "ear/temporal",
      "The lowest point of the mastoid process.",
      _src(_MS, _BU), ["Ms", "mastoid tip"])

# Soft tissue, midline ----------------------------------------------------------------------
_mid("tr", "trichion", _S, "cranial vault",
     "The point where the hairline meets the midline of the forehead.",
     _src(_FA, _CS), ["Tr"])
_mid("v_s", "soft-tissue vertex", _S, "cranial vault",
     "The highest point of the scalp in the midsagittal plane with the head in the Frankfurt horizontal.",
     _src(_FA, _CS))
_mid("g_s", "soft-tissue glabella", _S, "cranial vault",
     "The most prominent midline point of the soft-tissue forehead between the eyebrows.",
     _src(_FA, _LB, _CS))
_mid("op_s", "soft-tissue opisthocranion", _S, "cranial vault",
     "The midline point on the scalp over the occiput farthest from soft-tissue glabella, the posterior "
     "end of maximum head length.",
     _src(_FA, _CS))
_mid("n_s", "soft-tissue nasion", _S, "nose",
     "The midline point on the skin of the nasal root that overlies the frontonasal suture (bony nasion).",
     _src(_FA, _HO, _CS))
_mid("se", "sellion", _S, "nose",
     "The deepest midline point of the soft-tissue contour of the nasofrontal angle.",
     _src(_FA, _CS), ["Se"])
_mid("prn", "pronasale", _S, "nose",
     "The most anterior (protruded) point of the nasal tip.",
     _src(_FA, _CS), ["Prn", "Pn", "nasal tip", "nose tip"])
_mid("c", "columella point", _S, "nose",
     "The most anterior point of the columella crest, at the level of the nostril tips.",
     _src(_FA), ["c'", "columella", "Cm", "columella tangent point"])
_mid("sn", "subnasale", _S, "nose",
     "The midline point where the lower border of the nasal septum (columella) meets the upper lip.",
     _src(_FA, _LB, _HO), ["Sn"])
_mid("a_s", "soft-tissue A point", _S, "lips",
     "The deepest midline point of the concave contour of the upper lip between subnasale and labrale "
     "superius.",
     _src(_HO), ["superior labial sulcus", "Sls"])
_mid("ls", "labrale superius", _S, "lips",
     "The midpoint of the upper vermilion line (the mucocutaneous junction of the upper lip).",
     _src(_FA, _LB), ["Ls", "upper lip point"])
_mid("sto", "stomion", _S, "lips",
     "The midline point of the labial fissure when the lips are gently closed.",
     _src(_FA, _CS), ["Sto", "St"])
_mid("li", "labrale inferius", _S, "lips",
     "The midpoint of the lower vermilion line (the mucocutaneous junction of the lower lip).",
     _src(_FA, _LB), ["Li", "lower lip point"])
_mid("sl", "sublabiale", _S, "chin",
     "The deepest midline point of the labiomental sulcus, at the boundary between the lower lip and "
     "the chin.",
     _src(_FA, _HO), ["Sl", "soft-tissue B point", "B'", "b_s", "labiomental sulcus", "inferior labial sulcus",
                      "Ils"])
_mid("pog_s", "soft-tissue pogonion", _S, "chin",
     "The most anterior midline point of the soft-tissue chin.",
     _src(_FA, _HO, _LB, _CS))
_mid("gn_s", "soft-tissue gnathion", _S, "chin",
     "The midline point on the soft-tissue chin outline midway between soft-tissue pogonion and "
     "soft-tissue menton.",
     _src(_LB, _CS))
_mid("me_s", "soft-tissue menton", _S, "chin",
     "The lowest point on the soft-tissue outline of the chin.",
     _src(_LB, _FA, _CS), ["gnathion (Farkas)"])

# Soft tissue, bilateral --------------------------------------------------------------------
_pair("en", "endocanthion", _S, "orbit",
      "The point at the inner commissure of the palpebral fissure.",
      _src(_FA, _CS), ["En", "inner canthus"])
_pair("ex", "exocanthion", _S, "orbit",
      "The point at the outer commissure of the palpebral fissure.",
      _src(_FA, _CS), ["Ex", "ectocanthion", "outer canthus"])
_pair("ps", "palpebrale superius", _S, "orbit",
      "The highest point in the middle portion of the free margin of the upper eyelid.",
      _src(_FA), ["Ps"])
_pair("pi", "palpebrale inferius", _S, "orbit",
      "The lowest point in the middle portion of the free margin of the lower eyelid.",
      _src(_FA), ["Pi"])
_pair("or_s", "soft-tissue orbitale", _S, "orbit",
      "The point on the skin over the lowest point of the inferior orbital margin, located by palpation.",
      _src(_FA, _CS))
_pair("al", "alare", _S, "nose",
      "The most lateral point on the contour of the nasal ala.",
      _src(_FA, _CS), ["Al"])
_pair("ac", "alar curvature point", _S, "nose",
      "The most posterolateral point of the curved base line of the nasal ala, where it inserts into the "
      "face.",
      _src(_FA), ["Ac", "alar crest point"])
_pair("sbal", "subalare", _S, "nose",
      "The point at the lower end of the alar base where it merges with the skin of the upper lip.",
      _src(_FA), ["Sbal"])
_pair("cph", "crista philtri", _S, "lips",
      "The point on the crest of the philtral column just above the vermilion line.",
      _src(_FA), ["Cph", "crista philtri point"])
_pair("ch", "cheilion", _S, "lips",
      "The point at the labial commissure (corner of the mouth).",
      _src(_FA, _CS), ["Ch", "labial commissure", "mouth corner"])
_pair("zy_s", "soft-tissue zygion", _S, "zygoma",
      "The most lateral point of the soft tissue over the zygomatic arch.",
      _src(_FA, _CS))
_pair("go_s", "soft-tissue gonion", _S, "mandible",
      "The most lateral point of the soft tissue over the angle of the mandible, overlying bony gonion.",
      _src(_FA, _CS))
_pair("eu_s", "soft-tissue euryon", _S, "cranial vault",
      "The most lateral point of the head, on the scalp over the parietal region.",
      _src(_FA, _CS))
_pair("t", "tragion", _S, "ear/temporal",
      "The point in the notch at the upper margin of the tragus of the ear.",
      _src(_FA, _CS), ["T"])
_pair("sa", "superaurale", _S, "ear/temporal",
      "The highest point on the free margin of the auricle.",
      _src(_FA), ["Sa"])
_pair("sba", "subaurale", _S, "ear/temporal",
      "The lowest point on the free margin of the ear lobe.",
      _src(_FA), ["Sba"])
_pair("obs", "otobasion superius", _S, "ear/temporal",
      "The point where the helix attaches to the skin of the temporal region.",
      _src(_FA), ["Obs"])
_pair("obi", "otobasion inferius", _S, "ear/temporal",
      "The point where the ear lobe attaches to the skin of the cheek.",
      _src(_FA), ["Obi"])

VOCABULARY: dict[str, LandmarkDef] = {}
for _e in _ENTRIES:
    if _e.id in VOCABULARY:
        raise RuntimeError(f"duplicate landmark id {_e.id!r} in the vocabulary")
    VOCABULARY[_e.id] = _e
del _e
"""id -> definition, craniometric then soft tissue, each midline first then left/right pairs.
Treat it as read-only."""


# --------------------------------------------------------------------------------------------
# Name resolution
# --------------------------------------------------------------------------------------------

_SIDE_WORDS = {"l": "left", "left": "left", "lt": "left", "r": "right", "right": "right", "rt": "right"}
_SOFT_PREFIX = "soft tissue "
_SOFT_SUFFIX = " soft tissue"


def _norm(text: str) -> str:
    t = str(text).strip().lower()
    for prime in ("\u2019", "\u2032", "`", "\u00b4"):
        t = t.replace(prime, "'")
    t = re.sub(r"[\s_\-.,;:()\[\]/]+", " ", t).strip()
    return re.sub(r"\s+'", "'", t)


def _build_forms() -> tuple[dict[str, str], dict[str, list[str]]]:
    """normalized form -> base (midline id, or bilateral id without suffix); base -> ids."""
    forms: dict[str, str] = {}
    bases: dict[str, list[str]] = {}
    for e in VOCABULARY.values():
        bases.setdefault(e.base, []).append(e.id)
        for text in (e.base, e.name, *e.aliases):
            key = _norm(text)
            if forms.get(key, e.base) != e.base:
                raise RuntimeError(f"landmark name {text!r} is claimed by both {forms[key]!r} and {e.base!r}")
            forms[key] = e.base
    return forms, bases


_FORMS, _BASES = _build_forms()


def _split_side(norm: str) -> tuple[str, str | None]:
    tokens = norm.split(" ")
    if len(tokens) > 1:
        if tokens[-1] in _SIDE_WORDS:
            return " ".join(tokens[:-1]), _SIDE_WORDS[tokens[-1]]
        if tokens[0] in _SIDE_WORDS:
            return " ".join(tokens[1:]), _SIDE_WORDS[tokens[0]]
    return norm, None


def _strip_soft(core: str) -> str | None:
    if core.startswith(_SOFT_PREFIX):
        return core[len(_SOFT_PREFIX):]
    if core.endswith(_SOFT_SUFFIX):
        return core[:-len(_SOFT_SUFFIX)]
    if core.endswith("'") and len(core) > 1:
        return core[:-1]
    return None


def _base_of(core: str) -> str | None:
    if core in _FORMS:
        return _FORMS[core]
    bony = _strip_soft(core)
    if bony is not None and bony in _FORMS:
        base = _FORMS[bony]
        if VOCABULARY[_BASES[base][0]].kind == "soft_tissue":
            return base  # "soft tissue pronasale": the qualifier is redundant
        if base + "_s" in _BASES:
            return base + "_s"
    return None


def _label(landmark_id: str) -> str:
    return f"'{landmark_id}' ({VOCABULARY[landmark_id].display_name})"


def _suggest(text: str, limit: int = 4) -> list[str]:
    core, side = _split_side(_norm(text))
    out: list[str] = []
    for match in difflib.get_close_matches(core, list(_FORMS), n=8, cutoff=0.6):
        for lid in _BASES[_FORMS[match]]:
            if (side is None or VOCABULARY[lid].side in (side, "midline")) and lid not in out:
                out.append(lid)
    return out[:limit]


def _did_you_mean(suggestions: list[str]) -> str:
    if not suggestions:
        return "see docs/landmarks.md for the vocabulary"
    return "did you mean " + " or ".join(_label(s) for s in suggestions) + "?"


def resolve(name_or_alias: str) -> str:
    """The id for an id, name or alias ("nasion", "Pogonion", "N", "Go L", "soft tissue pogonion").

    Case and punctuation are ignored. A bilateral landmark needs a side word ("left", "right",
    "l", "r") before or after its name; a soft-tissue analogue may be named through its bony
    landmark ("soft tissue X", "X soft tissue", "X'"). Raises :class:`UnknownLandmarkError` (a
    ``KeyError``) for an unknown or ambiguous name, with suggestions.
    """
    if isinstance(name_or_alias, str) and name_or_alias in VOCABULARY:
        return name_or_alias
    norm = _norm(name_or_alias)
    base = _base_of(norm)
    side = None
    if base is None or len(_BASES[base]) == 2:
        core, side = _split_side(norm)
        if side is not None:
            base = _base_of(core)
    if base is None:
        bony = _strip_soft(_split_side(norm)[0])
        if bony is not None and bony in _FORMS:
            members = _BASES[_FORMS[bony]]
            raise UnknownLandmarkError(
                f"landmark name {name_or_alias!r}: the vocabulary has no soft-tissue analogue of "
                f"{VOCABULARY[members[0]].name} ({', '.join(members)})", members)
        suggestions = _suggest(name_or_alias)
        raise UnknownLandmarkError(f"unknown landmark name {name_or_alias!r}; {_did_you_mean(suggestions)}",
                                   suggestions)
    members = _BASES[base]
    if len(members) == 1:
        if side is not None:
            raise UnknownLandmarkError(
                f"landmark name {name_or_alias!r}: {_label(members[0])} is a midline landmark and has no "
                f"{side} side", members)
        return members[0]
    if side is None:
        raise UnknownLandmarkError(
            f"landmark name {name_or_alias!r} is bilateral: say which side, {_label(members[0])} or "
            f"{_label(members[1])}", members)
    return base + _SIDE_SUFFIX[side]


# --------------------------------------------------------------------------------------------
# Lookups
# --------------------------------------------------------------------------------------------

def is_known(landmark_id: str) -> bool:
    """True when ``landmark_id`` is exactly an id of the vocabulary (names and aliases are not)."""
    return isinstance(landmark_id, str) and landmark_id in VOCABULARY


def get(landmark_id: str) -> LandmarkDef:
    """The definition of an id; :class:`UnknownLandmarkError` (a ``KeyError``) suggests close ids."""
    if isinstance(landmark_id, str) and landmark_id in VOCABULARY:
        return VOCABULARY[landmark_id]
    try:
        named = resolve(landmark_id)
    except UnknownLandmarkError:
        suggestions = _suggest(landmark_id)
        raise UnknownLandmarkError(f"unknown landmark id {landmark_id!r}; {_did_you_mean(suggestions)}",
                                   suggestions) from None
    raise UnknownLandmarkError(
        f"{landmark_id!r} is not a landmark id but names {_label(named)}; use that id, or "
        f"medface.anatomy.landmarks.resolve() to map names and aliases to ids", [named])


def mirror_id(landmark_id: str) -> str:
    """The other side's id (``go_l`` -> ``go_r``); a midline id is its own mirror."""
    entry = get(landmark_id)
    return entry.mirror or entry.id


def counterpart(landmark_id: str) -> str | None:
    """The bony landmark under a soft-tissue analogue and vice versa (``n`` <-> ``n_s``,
    ``zy_l`` <-> ``zy_s_l``); ``None`` when the vocabulary has no such pair."""
    entry = get(landmark_id)
    suffix = "" if entry.side == "midline" else entry.id[-2:]
    base = entry.base
    other = base[:-2] if entry.kind == "soft_tissue" and base.endswith("_s") else base + "_s"
    other_id = other + suffix
    if other_id in VOCABULARY and VOCABULARY[other_id].kind != entry.kind:
        return other_id
    return None


def ids(kind: str | None = None, region: str | None = None) -> list[str]:
    """Ids in vocabulary order, optionally only of one kind and/or region."""
    if kind is not None and kind not in KINDS:
        raise ParameterError(f"landmark kind {kind!r} is not one of {', '.join(KINDS)}", parameter="kind")
    if region is not None and region not in REGIONS:
        close = difflib.get_close_matches(str(region), REGIONS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ParameterError(f"landmark region {region!r} is not one of {', '.join(REGIONS)}{hint}",
                             parameter="region")
    return [e.id for e in VOCABULARY.values()
            if (kind is None or e.kind == kind) and (region is None or e.region == region)]


def craniometric_ids() -> list[str]:
    return ids(kind="craniometric")


def soft_tissue_ids() -> list[str]:
    return ids(kind="soft_tissue")


def bilateral_pairs() -> list[tuple[str, str]]:
    """(left id, right id) for every bilateral landmark, in vocabulary order."""
    return [(e.id, e.mirror) for e in VOCABULARY.values() if e.side == "left"]
