"""The GMDB evaluation protocol for a face-embedding screening model (pure functions on arrays).

GestaltMatcher (Hsieh et al., Nature Genetics 2022) and GestaltMatcher-Arc (Hustinx et al., WACV
2023) evaluate a face encoder by *gallery ranking*: every test image is a query, every training
image of the considered conditions is a gallery entry, and the conditions are ranked by the
cosine distance from the query to the nearest gallery image of each condition. Top-k accuracy is
computed per condition and then averaged over conditions, so that frequent conditions do not
dominate. Conditions are divided into *frequent* (F) and *rare* (R), and four settings are
reported: F/F, R/R, F/F+R and R/F+R (queries / gallery). Train and test sets are disjoint by
subject, so no person is both a query and in the gallery.

The GMDB papers call a disorder frequent when it has more than six subjects; this module's
default threshold (``min_subjects=10``) is a parameter, set it to 7 to follow the papers.

Everything here is numpy, scipy and scikit-learn, without I/O; the validation document is written by
:mod:`validation_doc`.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from medface.errors import InputError, ParameterError

CONTROL = "unaffected"
DEFAULT_KS: tuple[int, ...] = (1, 5, 10, 30)
SETTINGS: tuple[str, ...] = ("F/F", "R/R", "F/F+R", "R/F+R")
# Elements of the (queries x gallery) similarity block computed at once by rank_by_gallery:
# 2**24 float64 values = 128 MiB.
_BLOCK_ELEMENTS = 1 << 24


# --------------------------------------------------------------------------------------------
# input checks
# --------------------------------------------------------------------------------------------

def _as_str_list(values, name: str) -> list[str]:
    arr = np.asarray(values, dtype=object)
    if arr.ndim != 1:
        raise InputError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.size == 0:
        raise InputError(f"{name} is empty")
    return [str(v) for v in arr]


def _as_embeddings(x, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2:
        raise InputError(f"{name} must be a 2-D array (images x dimensions), got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InputError(f"{name} is empty (shape {arr.shape})")
    if not np.all(np.isfinite(arr)):
        raise InputError(f"{name} contains NaN or infinite values")
    return arr


def _l2_normalise(x: np.ndarray, name: str) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    zero = np.flatnonzero(norms[:, 0] == 0)
    if zero.size:
        raise InputError(f"{name} has {zero.size} all-zero vector(s) (first at row {zero[0]}); "
                         "cosine distance is undefined for them")
    return x / norms


def _as_index(idx, n: int, name: str) -> np.ndarray:
    arr = np.asarray(idx)
    if arr.ndim != 1:
        raise InputError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise InputError(f"{name} must hold integer indices, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    if arr.size and (arr.min() < 0 or arr.max() >= n):
        raise InputError(f"{name} has indices outside 0..{n - 1}")
    if np.unique(arr).size != arr.size:
        raise InputError(f"{name} has repeated indices")
    return arr


def _check_ks(ks: Iterable[int]) -> tuple[int, ...]:
    raw = list(ks)
    if not raw:
        raise ParameterError("ks is empty", parameter="ks")
    if any(isinstance(k, bool) or int(k) != k or k < 1 for k in raw):
        raise ParameterError(f"ks must be positive integers, got {raw}", parameter="ks")
    return tuple(int(k) for k in raw)


# --------------------------------------------------------------------------------------------
# 1. subject-disjoint split
# --------------------------------------------------------------------------------------------

def _subject_labels(subjects: list[str], labels: list[str]) -> dict[str, str]:
    """Map each subject to its one label; InputError if a subject carries two labels."""
    owner: dict[str, str] = {}
    clashes: list[str] = []
    for s, lab in zip(subjects, labels):
        prev = owner.setdefault(s, lab)
        if prev != lab and len(clashes) < 3:
            clashes.append(f"{s!r} ({prev!r} and {lab!r})")
    if clashes:
        raise InputError("each subject must carry one label; subjects with several: " + ", ".join(clashes),
                         hint="correct the labels so that every photo of a subject names the same condition")
    return owner


def subject_disjoint_split(subjects, labels, test_fraction: float = 0.25,
                           seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Split images into train and test so that all images of a subject land on the same side.

    Stratified by label: for every label, ``round(test_fraction * n_subjects)`` whole subjects
    go to test, clipped so that a label with two or more subjects has at least one subject on
    each side; a label with a single subject goes to train. Subject ids are compared as strings.
    The assignment of one label depends only on ``seed`` and that label's name and subjects,
    so adding a condition does not reshuffle the others.

    Returns ``(train_idx, test_idx)``: sorted int64 arrays of image indices.
    """
    subj = _as_str_list(subjects, "subjects")
    labs = _as_str_list(labels, "labels")
    if len(subj) != len(labs):
        raise InputError(f"subjects ({len(subj)}) and labels ({len(labs)}) differ in length")
    if not 0.0 < test_fraction < 1.0:
        raise ParameterError(f"test_fraction must lie strictly between 0 and 1, got {test_fraction}",
                             parameter="test_fraction",
                             hint="0.25 keeps a quarter of each label's subjects for testing")
    owner = _subject_labels(subj, labs)
    by_label: dict[str, list[str]] = {}
    for s, lab in owner.items():
        by_label.setdefault(lab, []).append(s)
    test_subjects: set[str] = set()
    for lab in sorted(by_label):
        members = sorted(by_label[lab])
        n = len(members)
        if n < 2:
            continue
        n_test = min(max(math.floor(test_fraction * n + 0.5), 1), n - 1)
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), zlib.crc32(lab.encode("utf-8"))]))
        chosen = rng.permutation(n)[:n_test]
        test_subjects.update(members[i] for i in chosen)
    is_test = np.fromiter((s in test_subjects for s in subj), dtype=bool, count=len(subj))
    return np.flatnonzero(~is_test).astype(np.int64), np.flatnonzero(is_test).astype(np.int64)


# --------------------------------------------------------------------------------------------
# 2. frequent and rare conditions
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FrequentRare:
    """Conditions divided into frequent and rare; the control label is in neither."""

    frequent: tuple[str, ...]
    rare: tuple[str, ...]
    control: str = CONTROL
    min_subjects: int | None = None          # None when the rare list was given explicitly
    subjects_per_label: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"frequent": list(self.frequent), "rare": list(self.rare), "control": self.control,
                "min_subjects": self.min_subjects, "subjects_per_label": dict(self.subjects_per_label)}


def split_frequent_rare(labels, subjects, *, rare: Iterable[str] | None = None, min_subjects: int = 10,
                        control: str = CONTROL) -> FrequentRare:
    """Divide the conditions in ``labels`` into frequent and rare.

    With ``rare`` given, those conditions are rare (every name must occur in ``labels`` and none
    may be the control) and all other conditions are frequent. Otherwise a condition with fewer
    than ``min_subjects`` distinct subjects is rare. The control label is never a condition.
    """
    labs = _as_str_list(labels, "labels")
    subj = _as_str_list(subjects, "subjects")
    if len(subj) != len(labs):
        raise InputError(f"subjects ({len(subj)}) and labels ({len(labs)}) differ in length")
    per_label: dict[str, set[str]] = {}
    for s, lab in zip(subj, labs):
        per_label.setdefault(lab, set()).add(s)
    counts = {lab: len(per_label[lab]) for lab in sorted(per_label)}
    conditions = [lab for lab in counts if lab != control]
    if rare is not None:
        rare_set = {str(r) for r in rare}
        if control in rare_set:
            raise ParameterError(f"the control label {control!r} cannot be a rare condition", parameter="rare")
        unknown = sorted(rare_set - set(conditions))
        if unknown:
            raise ParameterError(f"unknown rare condition name(s), not among the labels: {unknown}", parameter="rare",
                                 hint="name conditions exactly as the data set's label column does")
        return FrequentRare(tuple(c for c in conditions if c not in rare_set),
                            tuple(c for c in conditions if c in rare_set), control, None, counts)
    if min_subjects < 1:
        raise ParameterError(f"min_subjects must be at least 1, got {min_subjects}", parameter="min_subjects")
    return FrequentRare(tuple(c for c in conditions if counts[c] >= min_subjects),
                        tuple(c for c in conditions if counts[c] < min_subjects), control,
                        int(min_subjects), counts)


# --------------------------------------------------------------------------------------------
# 3. gallery ranking
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Ranking:
    """Conditions ranked for each query by the distance to their nearest gallery image.

    ``conditions`` are the gallery's conditions in name order; ``order[i]`` holds indices into
    ``conditions``, nearest first, for query ``i``; ``distances[i]`` the matching cosine
    distances (ascending). Both arrays have shape (n_queries, n_conditions).
    """

    conditions: tuple[str, ...]
    order: np.ndarray
    distances: np.ndarray

    @property
    def n_queries(self) -> int:
        return int(self.order.shape[0])

    def labels(self, query: int | None = None) -> list[str] | list[list[str]]:
        """Ranked condition names of one query, or of all queries (a list of lists)."""
        if query is not None:
            return [self.conditions[j] for j in self.order[query]]
        return [[self.conditions[j] for j in row] for row in self.order]

    def top1(self) -> list[str]:
        """The nearest condition of each query (the top-1 prediction)."""
        return [self.conditions[j] for j in self.order[:, 0]]


def rank_by_gallery(query_emb, gallery_emb, gallery_labels, *, chunk_size: int | None = None) -> Ranking:
    """Rank the gallery's conditions for each query by nearest-image cosine distance.

    Cosine distance is ``1 - cos`` of the L2-normalised vectors. For every query and every
    condition the nearest gallery image of that condition gives the condition's distance
    ("nearest per disorder"); conditions are sorted by it ascending, ties by condition name.
    Queries are processed in chunks (``chunk_size`` queries at a time; by default chosen so a
    chunk's similarity block holds about 16 M values), so 10k x 10k fits in modest memory.
    """
    q = _l2_normalise(_as_embeddings(query_emb, "query_emb"), "query_emb")
    g = _l2_normalise(_as_embeddings(gallery_emb, "gallery_emb"), "gallery_emb")
    g_labels = _as_str_list(gallery_labels, "gallery_labels")
    if len(g_labels) != g.shape[0]:
        raise InputError(f"gallery_labels ({len(g_labels)}) and gallery_emb rows ({g.shape[0]}) differ")
    if q.shape[1] != g.shape[1]:
        raise InputError(f"query_emb has {q.shape[1]} dimensions, gallery_emb {g.shape[1]}")
    conditions, inverse = np.unique(np.asarray(g_labels, dtype=str), return_inverse=True)
    # Group gallery rows by condition so each condition is one contiguous column block.
    perm = np.argsort(inverse, kind="stable")
    g_sorted = g[perm]
    starts = np.searchsorted(inverse[perm], np.arange(conditions.size))
    if chunk_size is None:
        chunk_size = max(1, _BLOCK_ELEMENTS // g.shape[0])
    if chunk_size < 1:
        raise ParameterError(f"chunk_size must be positive, got {chunk_size}", parameter="chunk_size")
    n_q, n_c = q.shape[0], conditions.size
    order = np.empty((n_q, n_c), dtype=np.int32 if n_c < 2**31 else np.int64)
    dists = np.empty((n_q, n_c), dtype=np.float64)
    for lo in range(0, n_q, chunk_size):
        sims = q[lo:lo + chunk_size] @ g_sorted.T
        best = np.maximum.reduceat(sims, starts, axis=1)          # nearest image per condition
        d = np.clip(1.0 - best, 0.0, 2.0)
        o = np.argsort(d, axis=1, kind="stable")                    # stable: ties by name order
        order[lo:lo + chunk_size] = o
        dists[lo:lo + chunk_size] = np.take_along_axis(d, o, axis=1)
    return Ranking(tuple(str(c) for c in conditions), order, dists)


def true_label_ranks(ranked, true_labels) -> np.ndarray:
    """1-based rank of each query's true condition; ``inf`` where the gallery lacks it.

    ``ranked`` is a :class:`Ranking` or, for hand-made cases, one ranked list of condition names
    per query.
    """
    truth = _as_str_list(true_labels, "true_labels")
    if isinstance(ranked, Ranking):
        if ranked.n_queries != len(truth):
            raise InputError(f"ranking has {ranked.n_queries} queries, true_labels {len(truth)}")
        index = {c: i for i, c in enumerate(ranked.conditions)}
        t = np.array([index.get(lab, -1) for lab in truth], dtype=np.int64)
        hit = ranked.order == t[:, None]
        ranks = hit.argmax(axis=1).astype(np.float64) + 1.0
        ranks[t < 0] = np.inf
        return ranks
    rows = list(ranked)
    if len(rows) != len(truth):
        raise InputError(f"ranking has {len(rows)} queries, true_labels {len(truth)}")
    ranks = np.full(len(truth), np.inf)
    for i, (row, lab) in enumerate(zip(rows, truth)):
        names = [str(x) for x in row]
        if lab in names:
            ranks[i] = names.index(lab) + 1
    return ranks


# --------------------------------------------------------------------------------------------
# 4-5. top-k accuracy and chance
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TopKTable:
    """Top-k accuracy of each query condition, their unweighted mean, and the per-image rate."""

    ks: tuple[int, ...]
    conditions: tuple[str, ...]                 # conditions present among the queries, by name
    n_queries: tuple[int, ...]                  # queries per condition, aligned with conditions
    per_condition: dict[str, dict[int, float]]  # condition -> {k: fraction of its queries in top k}
    mean: dict[int, float]                      # GMDB number: mean over conditions
    per_image: dict[int, float]                 # pooled over images (for comparison only)

    def rows(self) -> list[dict]:
        """JSON-friendly per-condition rows: condition, n_queries, top1, top5, ..."""
        return [{"condition": c, "n_queries": n, **{f"top{k}": self.per_condition[c][k] for k in self.ks}}
                for c, n in zip(self.conditions, self.n_queries)]


def topk_table(ranked, true_labels, ks: Iterable[int] = DEFAULT_KS) -> TopKTable:
    """Per-condition top-k accuracy and its unweighted mean over conditions (GMDB style)."""
    ks = _check_ks(ks)
    ranks = true_label_ranks(ranked, true_labels)
    conds, inverse, counts = np.unique(np.asarray(_as_str_list(true_labels, "true_labels"), dtype=str),
                                       return_inverse=True, return_counts=True)
    per_cond: dict[str, dict[int, float]] = {str(c): {} for c in conds}
    mean: dict[int, float] = {}
    per_image: dict[int, float] = {}
    for k in ks:
        hits = (ranks <= k).astype(np.float64)
        rate = np.bincount(inverse, weights=hits, minlength=conds.size) / counts
        for c, r in zip(conds, rate):
            per_cond[str(c)][k] = float(r)
        mean[k] = float(rate.mean())
        per_image[k] = float(hits.mean())
    return TopKTable(ks, tuple(str(c) for c in conds), tuple(int(n) for n in counts), per_cond, mean, per_image)


def topk_per_condition(ranked, true_labels, ks: Iterable[int] = DEFAULT_KS) -> dict[int, float]:
    """Top-k accuracy averaged over conditions: ``{k: mean over conditions of hit rate}``.

    A query whose true condition is absent from the gallery counts as a miss at every k.
    """
    return topk_table(ranked, true_labels, ks).mean


def chance_topk(n_conditions: int, ks: Iterable[int] = DEFAULT_KS) -> dict[int, float]:
    """Top-k accuracy of a random ranking of ``n_conditions`` conditions: ``min(k / n, 1)``."""
    if int(n_conditions) != n_conditions or n_conditions < 1:
        raise ParameterError(f"n_conditions must be a positive integer, got {n_conditions}", parameter="n_conditions")
    return {k: min(k / int(n_conditions), 1.0) for k in _check_ks(ks)}


# --------------------------------------------------------------------------------------------
# 7-9. CMC, confusion matrix, control AUROC
# --------------------------------------------------------------------------------------------

def cmc_curve(ranked, true_labels, max_rank: int) -> np.ndarray:
    """Cumulative match characteristic averaged over conditions.

    Element ``r - 1`` is the mean over query conditions of the fraction of that condition's
    queries whose true condition is within the top ``r``; the array has length ``max_rank``.
    """
    if int(max_rank) != max_rank or max_rank < 1:
        raise ParameterError(f"max_rank must be a positive integer, got {max_rank}", parameter="max_rank")
    ranks = true_label_ranks(ranked, true_labels)
    _, inverse, counts = np.unique(np.asarray(_as_str_list(true_labels, "true_labels"), dtype=str),
                                   return_inverse=True, return_counts=True)
    # per-condition histogram of ranks (ranks beyond max_rank, or inf, never count)
    n_c = counts.size
    finite = ranks <= max_rank
    hist = np.zeros((n_c, int(max_rank)), dtype=np.float64)
    np.add.at(hist, (inverse[finite], ranks[finite].astype(np.int64) - 1), 1.0)
    return (np.cumsum(hist, axis=1) / counts[:, None]).mean(axis=0)


def confusion_matrix(true_labels, predicted_labels, labels) -> np.ndarray:
    """Counts of (true, predicted) pairs: rows are true conditions, columns predicted, in ``labels`` order.

    Every true and predicted label must be in ``labels`` (so no count is silently dropped).
    """
    truth = _as_str_list(true_labels, "true_labels")
    pred = _as_str_list(predicted_labels, "predicted_labels")
    names = _as_str_list(labels, "labels")
    if len(truth) != len(pred):
        raise InputError(f"true_labels ({len(truth)}) and predicted_labels ({len(pred)}) differ in length")
    if len(set(names)) != len(names):
        raise InputError("labels has repeated names")
    missing = sorted((set(truth) | set(pred)) - set(names))
    if missing:
        raise InputError(f"labels lacks {len(missing)} name(s) found in the data: {missing[:5]}")
    index = {name: k for k, name in enumerate(names)}
    counts = np.zeros((len(names), len(names)), np.int64)
    np.add.at(counts, ([index[t] for t in truth], [index[p] for p in pred]), 1)
    return counts


def control_auroc(syndromic_score, is_control) -> float:
    """AUROC of a score meant to be high for affected images and low for controls.

    Affected (``is_control`` false) is the positive class: 1.0 means every affected image scores
    above every control, 0.5 is chance, 0.0 is perfectly reversed.
    """
    from sklearn.metrics import roc_auc_score

    score = np.asarray(syndromic_score, dtype=np.float64)
    ctrl = np.asarray(is_control)
    if score.ndim != 1 or ctrl.ndim != 1:
        raise InputError(f"syndromic_score and is_control must be 1-D, got shapes {score.shape} and {ctrl.shape}")
    if score.size != ctrl.size:
        raise InputError(f"syndromic_score ({score.size}) and is_control ({ctrl.size}) differ in length")
    if score.size == 0:
        raise InputError("syndromic_score is empty")
    if not np.all(np.isfinite(score)):
        raise InputError("syndromic_score contains NaN or infinite values")
    if ctrl.dtype != bool:
        if not np.isin(ctrl, (0, 1)).all():
            raise InputError("is_control must be boolean (or 0/1)")
        ctrl = ctrl.astype(bool)
    n_ctrl = int(ctrl.sum())
    if n_ctrl == 0 or n_ctrl == ctrl.size:
        only = "controls" if n_ctrl else "affected images"
        raise InputError(f"control AUROC needs both affected and control images; got only {only} ({ctrl.size})",
                         hint="evaluate on data with unaffected and affected photos")
    return float(roc_auc_score(~ctrl, score))


def nearest_control_score(query_emb, gallery_emb, gallery_is_control) -> np.ndarray:
    """A syndromic score from the gallery alone: distance to the nearest control image minus the
    distance to the nearest affected image (high when the face sits nearer affected faces)."""
    ctrl = np.asarray(gallery_is_control, dtype=bool)
    g = np.asarray(gallery_emb)
    if ctrl.ndim != 1 or ctrl.size != len(g):
        raise InputError(f"gallery_is_control ({ctrl.shape}) must be 1-D and match gallery_emb rows ({len(g)})")
    if ctrl.all() or not ctrl.any():
        raise InputError("the gallery needs both control and affected images for this score")
    r = rank_by_gallery(query_emb, g, np.where(ctrl, "control", "affected"))
    by_name = np.take_along_axis(r.distances, np.argsort(r.order, axis=1), axis=1)  # columns in name order
    affected_col, control_col = r.conditions.index("affected"), r.conditions.index("control")
    return by_name[:, control_col] - by_name[:, affected_col]


# --------------------------------------------------------------------------------------------
# 6. the four GMDB settings
# --------------------------------------------------------------------------------------------

def _ks_dict(values: Mapping[int, float]) -> dict[str, float]:
    return {f"top{k}": float(v) for k, v in values.items()}


@dataclass(frozen=True)
class _Split:
    """Validated inputs of :func:`evaluate_settings`: embeddings, labels (object array), subjects,
    train and test indices, and how to rank."""

    x: np.ndarray
    labels: np.ndarray
    subjects: list[str]
    train: np.ndarray
    test: np.ndarray
    ks: tuple[int, ...]
    max_rank: int
    include_confusion: bool = True
    chunk_size: int | None = None
    genes: dict | None = None  # label -> its genes: gene rankings too (syndromes from the annotations)

    def pick(self, idx: np.ndarray, names: set[str]) -> np.ndarray:
        """The indices in ``idx`` whose label is among ``names``."""
        return idx[np.fromiter((self.labels[i] in names for i in idx), dtype=bool, count=idx.size)]


def _checked_split(emb, labels, subjects, train_idx, test_idx) -> tuple[np.ndarray, list[str], list[str],
                                                                         np.ndarray, np.ndarray]:
    """(embeddings, labels, subjects, train, test), checked: matching lengths, valid indices and a
    subject-disjoint split."""
    x = _as_embeddings(emb, "emb")
    labs = _as_str_list(labels, "labels")
    subj = _as_str_list(subjects, "subjects")
    n = x.shape[0]
    if len(labs) != n or len(subj) != n:
        raise InputError(f"emb has {n} rows, labels {len(labs)}, subjects {len(subj)}; they must match")
    train = _as_index(train_idx, n, "train_idx")
    test = _as_index(test_idx, n, "test_idx")
    if np.intersect1d(train, test).size:
        raise InputError("train_idx and test_idx share images")
    shared = sorted({subj[i] for i in train} & {subj[i] for i in test})
    if shared:
        raise InputError(f"train and test share {len(shared)} subject(s), e.g. {shared[:3]}; "
                         "the GMDB protocol needs a subject-disjoint split",
                         hint="split the images with subject_disjoint_split")
    return x, labs, subj, train, test


def _checked_groups(frequent: Iterable[str], rare: Iterable[str], labels: list[str],
                    control: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The frequent and rare condition names, sorted; each must be a label, none the control, and
    no condition both."""
    freq, rar = tuple(sorted({str(c) for c in frequent})), tuple(sorted({str(c) for c in rare}))
    present = set(labels)
    for name, group in (("frequent", freq), ("rare", rar)):
        if control in group:
            raise ParameterError(f"the control label {control!r} cannot be a {name} condition", parameter=name)
        unknown = sorted(set(group) - present)
        if unknown:
            raise ParameterError(f"unknown {name} condition name(s), not among the labels: {unknown}", parameter=name)
    both = sorted(set(freq) & set(rar))
    if both:
        raise ParameterError(f"condition(s) both frequent and rare: {both}", parameter="rare")
    return freq, rar


def evaluate_settings(emb, labels, subjects, train_idx, test_idx, frequent: Iterable[str], rare: Iterable[str], *,
                      ks: Iterable[int] = DEFAULT_KS, control: str = CONTROL, max_rank: int | None = None,
                      include_confusion: bool = True, chunk_size: int | None = None,
                      genes: dict | None = None) -> dict:
    """Evaluate the four GMDB settings (F/F, R/R, F/F+R, R/F+R) and the control AUROC.

    With ``genes`` (label -> gene symbols, e.g. for OMIM syndromes), each setting also ranks
    genes: the genes of the ranked conditions in order of first appearance, and the rank of the
    first gene of the query's own condition (``gene_top_k``; queries whose condition has no gene
    are left out of it, ``gene_queries`` counts the others).

    Queries are the test images of the query set's conditions, the gallery the training images
    of the gallery set's conditions. Test queries whose condition has no gallery image are
    left out of a setting (counted in ``n_queries_without_gallery``). A setting with no queries
    or no gallery is reported with ``skipped`` set to the reason and null metrics.

    The control AUROC scores each test image (affected conditions and controls) by
    :func:`nearest_control_score` against the training images.

    Each evaluated setting carries ``counts``: for every top-k the hits pooled over images, the
    number of queries and the one-sided binomial p-value against chance
    (:func:`binomial_against_chance`).

    Returns a JSON-serialisable dict (plain ints, floats, strings, lists, None).
    """
    x, labs, subj, train, test = _checked_split(emb, labels, subjects, train_idx, test_idx)
    ks = _check_ks(ks)
    freq, rar = _checked_groups(frequent, rare, labs, control)
    split = _Split(x, np.asarray(labs, dtype=object), subj, train, test, ks,
                   int(max_rank) if max_rank is not None else max(ks), include_confusion, chunk_size, genes)
    sets = {"F": set(freq), "R": set(rar), "F+R": set(freq) | set(rar)}
    settings: dict[str, dict] = {}
    for name in SETTINGS:
        qset, gset = name.split("/")
        settings[name] = _evaluate_one(name, split, split.pick(test, sets[qset]), split.pick(train, sets[gset]))
    return {
        "protocol": "GMDB (GestaltMatcher) gallery ranking, nearest image per condition, cosine distance",
        "ks": list(ks),
        "max_rank": split.max_rank,
        "control_label": control,
        "frequent": list(freq),
        "rare": list(rar),
        "n_images": int(x.shape[0]),
        "n_train_images": int(train.size),
        "n_test_images": int(test.size),
        "settings": settings,
        "control": _control_block(x, split.labels, train, test, control, sets["F+R"]),
    }


def _empty_setting(name: str, split: _Split, queries: np.ndarray, gallery: np.ndarray, n_without: int,
                   n_conditions: int) -> dict:
    """A setting's counts, with null metrics (filled in when it can be evaluated)."""
    return {
        "setting": name,
        "skipped": None,
        "n_queries": int(queries.size),
        "n_query_subjects": len({split.subjects[i] for i in queries}),
        "n_query_conditions": len({str(split.labels[i]) for i in queries}),
        "n_queries_without_gallery": n_without,
        "n_gallery_images": int(gallery.size),
        "n_conditions": n_conditions,
        "top_k": None, "top_k_per_image": None, "chance": None, "cmc": None, "per_condition": None,
        "confusion": None, "counts": None,
    }


def _evaluate_one(name: str, split: _Split, queries: np.ndarray, gallery: np.ndarray) -> dict:
    lab_arr = split.labels
    gallery_conditions = sorted({str(lab_arr[i]) for i in gallery})
    in_gallery = set(gallery_conditions)
    has_gallery = np.fromiter((lab_arr[i] in in_gallery for i in queries), dtype=bool, count=queries.size)
    n_without = int((~has_gallery).sum())
    queries = queries[has_gallery]
    out = _empty_setting(name, split, queries, gallery, n_without, len(gallery_conditions))
    if gallery.size == 0:
        out["skipped"] = "no gallery images (no training images of the gallery conditions)"
        return out
    if queries.size == 0:
        out["skipped"] = ("no queries (no test images of the query conditions"
                          + (" that also have gallery images)" if n_without else ")"))
        return out
    ranking = rank_by_gallery(split.x[queries], split.x[gallery], lab_arr[gallery], chunk_size=split.chunk_size)
    truth = [str(lab_arr[i]) for i in queries]
    table = topk_table(ranking, truth, split.ks)
    out.update(
        top_k=_ks_dict(table.mean),
        top_k_per_image=_ks_dict(table.per_image),
        chance=_ks_dict(chance_topk(len(ranking.conditions), split.ks)),
        cmc=[float(v) for v in cmc_curve(ranking, truth, split.max_rank)],
        per_condition=table.rows(),
        counts=setting_counts(ranking, truth, len(ranking.conditions), split.ks),
    )
    if split.genes is not None:
        ranks = gene_ranks(ranking.labels(), truth, split.genes)
        found = ranks[ranks > 0]  # 0: the condition has no gene
        out["gene_queries"] = int(found.size)
        out["gene_top_k"] = _ks_dict({k: float(np.mean(found <= k)) if found.size else float("nan")
                                      for k in split.ks})
    if split.include_confusion:
        cm = confusion_matrix(truth, ranking.top1(), list(ranking.conditions))
        out["confusion"] = {"labels": list(ranking.conditions), "matrix": cm.tolist()}
    return out


def gene_ranks(ranked_labels: list[list[str]], truth: list[str], genes: dict) -> np.ndarray:
    """Per query, the rank of the first gene of its true condition among the genes of its ranked
    conditions (in order of first appearance); inf when none of them appears, 0 when the true
    condition has no gene (not rankable)."""
    out = np.zeros(len(truth))
    for q, (labels, true) in enumerate(zip(ranked_labels, truth)):
        wanted = set(genes.get(true, ()))
        if not wanted:
            continue
        order = list(dict.fromkeys(g for label in labels for g in genes.get(label, ())))
        hits = [k + 1 for k, g in enumerate(order) if g in wanted]
        out[q] = hits[0] if hits else np.inf
    return out


def _control_block(x: np.ndarray, lab_arr: np.ndarray, train: np.ndarray, test: np.ndarray, control: str,
                   affected: set[str]) -> dict:
    block: dict = {"auroc": None, "reason": None, "n_affected": 0, "n_control": 0,
                   "score": "cosine distance to the nearest control training image minus the distance "
                            "to the nearest affected training image"}
    train_c = train[lab_arr[train] == control]
    train_a = train[np.isin(lab_arr[train], list(affected))]
    test_c = test[lab_arr[test] == control]
    test_a = test[np.isin(lab_arr[test], list(affected))]
    block["n_affected"], block["n_control"] = int(test_a.size), int(test_c.size)
    if not (train_c.size and train_a.size):
        block["reason"] = f"the training set lacks {'control' if not train_c.size else 'affected'} images"
        return block
    if not (test_c.size and test_a.size):
        block["reason"] = f"the test set lacks {'control' if not test_c.size else 'affected'} images"
        return block
    gallery = np.concatenate([train_c, train_a])
    queries = np.concatenate([test_a, test_c])
    score = nearest_control_score(x[queries], x[gallery], np.arange(gallery.size) < train_c.size)
    is_ctrl = np.arange(queries.size) >= test_a.size
    block["auroc"] = control_auroc(score, is_ctrl)
    return block


# --------------------------------------------------------------------------------------------
# 10. statistics a reviewer asks for: intervals over splits, tests against chance, subgroups
# --------------------------------------------------------------------------------------------

def _finite_values(values, name: str) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name} must be numbers, got {values!r}") from exc
    if arr.ndim != 1:
        raise InputError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.size == 0:
        raise InputError(f"{name} is empty")
    if not np.all(np.isfinite(arr)):
        raise InputError(f"{name} contains NaN, None or infinite values; leave out the splits without a figure")
    return arr


def mean_interval(values, level: float = 0.95, *, bounds: tuple[float, float] | None = None) -> dict:
    """Mean of a figure over repeated splits with a Student-t interval at ``level``.

    ``mean +- t(1 - (1 - level) / 2, n - 1) * sd / sqrt(n)``, sd with n - 1 degrees of freedom.
    With one value the mean is that value and there is no interval (``low``/``high`` None, and
    ``note`` says so). ``bounds`` (e.g. ``(0, 1)`` for a rate or an AUROC) clips the interval to
    the values the figure can take; ``clipped`` says whether it was. Repeated random splits share
    most training subjects, so this interval is narrower than the spread a new data set would show
    (Nadeau & Bengio, Machine Learning 52:239, 2003); it describes the variation over splits,
    nothing more.
    """
    from scipy import stats

    if not 0.0 < float(level) < 1.0:
        raise ParameterError(f"level must lie strictly between 0 and 1, got {level}", parameter="level",
                             hint="0.95 gives a 95 % interval")
    arr = _finite_values(values, "values")
    n, mean = int(arr.size), float(arr.mean())
    out = {"mean": mean, "low": None, "high": None, "sd": None, "n": n, "level": float(level),
           "method": "Student t over splits", "clipped": False, "note": None}
    if n == 1:
        out["note"] = "one split only: no interval"
        return out
    sd = float(arr.std(ddof=1))
    half = float(stats.t.ppf(0.5 + float(level) / 2.0, n - 1)) * sd / math.sqrt(n)
    low, high = mean - half, mean + half
    if bounds is not None:
        lo, hi = (float(b) for b in bounds)
        if not lo <= hi:
            raise ParameterError(f"bounds must be (low, high) with low <= high, got {bounds}", parameter="bounds")
        out["clipped"] = bool(low < lo or high > hi)
        low, high = max(low, lo), min(high, hi)
    out.update(sd=sd, low=low, high=high)
    return out


def binomial_against_chance(successes: int, n: int, chance: float) -> dict:
    """One-sided exact binomial test that a hit rate exceeds chance (H1: rate > chance).

    ``successes`` of ``n`` trials (images, pooled over conditions) were hits; ``chance`` is the
    hit probability of a random ranking. Returns the counts, the rate and the p-value
    (:func:`scipy.stats.binomtest`, alternative "greater"). The test assumes independent trials:
    several photos of one subject are not, so p is optimistic when subjects have several photos.
    """
    from scipy import stats

    for name, v in (("successes", successes), ("n", n)):
        if isinstance(v, bool) or int(v) != v:
            raise InputError(f"{name} must be a whole number, got {v!r}")
    successes, n = int(successes), int(n)
    if n < 1:
        raise InputError(f"n must be at least 1, got {n}", hint="a setting without queries has no test")
    if not 0 <= successes <= n:
        raise InputError(f"successes must lie in 0..n ({n}), got {successes}")
    if not (np.isfinite(chance) and 0.0 <= float(chance) <= 1.0):
        raise InputError(f"chance must be a probability in [0, 1], got {chance!r}")
    p = float(stats.binomtest(successes, n, float(chance), alternative="greater").pvalue)
    return {"successes": successes, "n": n, "rate": successes / n, "chance": float(chance), "p_value": p,
            "test": "one-sided exact binomial, H1: rate > chance"}


def topk_counts(ranked, true_labels, ks: Iterable[int] = DEFAULT_KS) -> dict[int, int]:
    """Number of queries whose true condition is within the top k, for each k (pooled over images)."""
    ranks = true_label_ranks(ranked, true_labels)
    return {k: int((ranks <= k).sum()) for k in _check_ks(ks)}


def setting_counts(ranked, true_labels, n_conditions: int, ks: Iterable[int] = DEFAULT_KS) -> dict[str, dict]:
    """:func:`binomial_against_chance` of every top-k of one setting: ``{"top1": {...}, ...}``."""
    n = len(_as_str_list(true_labels, "true_labels"))
    chance = chance_topk(n_conditions, ks)
    return {f"top{k}": binomial_against_chance(hits, n, chance[k]) for k, hits in
            topk_counts(ranked, true_labels, ks).items()}


#: GMDB's rare disorders have at most six subjects (Hsieh et al., Nature Genetics 2022)
GMDB_RARE_MAX_SUBJECTS = 6


def cap_subjects(subjects, labels, conditions: Iterable[str], max_subjects: int = GMDB_RARE_MAX_SUBJECTS,
                 seed: int = 0) -> np.ndarray:
    """A mask of the images to keep so that each of ``conditions`` has at most ``max_subjects``
    subjects (chosen at random with ``seed``, all images of a kept subject kept); images of
    other labels are all kept. Like :func:`subject_disjoint_split`, the choice for one condition
    depends only on ``seed`` and that condition's name and subjects."""
    subj = _as_str_list(subjects, "subjects")
    labs = _as_str_list(labels, "labels")
    if len(subj) != len(labs):
        raise InputError(f"subjects ({len(subj)}) and labels ({len(labs)}) differ in length")
    if int(max_subjects) != max_subjects or max_subjects < 1:
        raise ParameterError(f"max_subjects must be a positive integer, got {max_subjects}", parameter="max_subjects")
    owner = _subject_labels(subj, labs)
    dropped: set[str] = set()
    for lab in sorted({str(c) for c in conditions}):
        members = sorted(s for s, sl in owner.items() if sl == lab)
        if len(members) <= max_subjects:
            continue
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), zlib.crc32(lab.encode("utf-8")), 6]))
        dropped.update(members[i] for i in rng.permutation(len(members))[int(max_subjects):])
    return np.fromiter((s not in dropped for s in subj), dtype=bool, count=len(subj))


#: age bands of the subgroup tables (years, lower bound inclusive): children in three bands of
#: their own (reported apart from adults), then the adult bands
AGE_BANDS: tuple[tuple[str, float, float], ...] = (("<6", -math.inf, 6.0), ("6-11", 6.0, 12.0),
                                                   ("12-17", 12.0, 18.0), ("18-19", 18.0, 20.0),
                                                   ("20-39", 20.0, 40.0), ("40-59", 40.0, 60.0),
                                                   ("60+", 60.0, math.inf))
SKIN_TONE_ORDER = ("I", "II", "III", "IV", "V", "VI")
MISSING_GROUP = "(missing)"
#: groups with fewer queries than this are shown but left out of the largest gap (an assumption:
#: below ten queries one hit moves a rate by more than ten points)
MIN_GROUP_QUERIES = 10


def age_band(age) -> str:
    """The band of an age in years (children "<6", "6-11", "12-17"; "18-19", "20-39", "40-59",
    "60+"); an empty value is missing."""
    text = "" if age is None else str(age).strip()
    if not text:
        return MISSING_GROUP
    try:
        years = float(text)
    except ValueError:
        raise InputError(f"age {age!r} is not a number of years") from None
    if not np.isfinite(years) or years < 0:
        raise InputError(f"age {age!r} is not a number of years")
    return next(name for name, lo, hi in AGE_BANDS if lo <= years < hi)


def skin_tone_group(value) -> str:
    """A skin-tone value as its Fitzpatrick-like numeral I-VI (``"iii"``, ``"3"`` and ``"III"`` are
    all "III"); other text is kept as written, an empty value is missing."""
    text = "" if value is None else str(value).strip()
    if not text:
        return MISSING_GROUP
    if text.upper() in SKIN_TONE_ORDER:
        return text.upper()
    if text.isdigit() and 1 <= int(text) <= len(SKIN_TONE_ORDER):
        return SKIN_TONE_ORDER[int(text) - 1]
    return text


def _group_order(names: set[str]) -> list[str]:
    """Age bands and skin tones in their natural order, anything else by name; missing last."""
    known = [b[0] for b in AGE_BANDS] + list(SKIN_TONE_ORDER)
    rank = {name: i for i, name in enumerate(known)}
    present = sorted(names - {MISSING_GROUP}, key=lambda g: (rank.get(g, len(known)), g))
    return present + ([MISSING_GROUP] if MISSING_GROUP in names else [])


def _group_topk(ranks: np.ndarray, labels: np.ndarray, rankable: np.ndarray, ks: tuple[int, ...]) -> dict:
    """Top-k of the rankable queries, per condition then averaged (None when there are none)."""
    if not rankable.any():
        return {f"top{k}": None for k in ks}
    conds, inverse = np.unique(labels[rankable].astype(str), return_inverse=True)
    counts = np.bincount(inverse)
    return {f"top{k}": float((np.bincount(inverse, weights=(ranks[rankable] <= k).astype(float)) / counts).mean())
            for k in ks}


def _group_auroc(score: np.ndarray | None, is_control: np.ndarray) -> float | None:
    if score is None or is_control.all() or not is_control.any():
        return None
    return control_auroc(score, is_control)


def _largest_gap(rows: list[dict], figure: str, size_key: str, min_group: int) -> dict | None:
    """Highest minus lowest value of ``figure`` over the groups with at least ``min_group`` of
    ``size_key``; None when fewer than two groups qualify."""
    usable = [r for r in rows if r[figure] is not None and r[size_key] >= min_group and r["group"] != MISSING_GROUP]
    if len(usable) < 2:
        return None
    hi = max(usable, key=lambda r: r[figure])
    lo = min(reversed(usable), key=lambda r: r[figure])   # on a tie, a group other than ``hi``
    return {"gap": float(hi[figure] - lo[figure]), "highest": hi["group"], "lowest": lo["group"],
            "groups_compared": len(usable)}


def subgroup_report(groups, labels, ranks, score=None, *, control: str = CONTROL, ks: Iterable[int] = (1, 5),
                    min_group: int = MIN_GROUP_QUERIES) -> dict:
    """Figures within each group of the queries, and the largest gap between groups.

    ``groups[i]`` names query i's group (e.g. its sex or age band; :data:`MISSING_GROUP` where
    unknown), ``labels[i]`` its true label (``control`` for controls), ``ranks[i]`` the 1-based
    rank of its true condition in the gallery ranking of frequent and rare conditions (``inf``
    where the gallery lacks it, ignored for controls: NaN is fine there) and ``score[i]`` its
    syndromic score (None: no AUROC). Per group: top-k of the affected queries whose condition
    the gallery holds (per condition, then averaged over the group's conditions, as elsewhere),
    the control AUROC of ``score`` within the group, and the counts. Gaps compare only groups
    with at least ``min_group`` queries counted by the figure (affected rankable queries for
    top-k, all queries for the AUROC), and never the missing group.
    """
    g = np.asarray(_as_str_list(groups, "groups"), dtype=object)
    lab = np.asarray(_as_str_list(labels, "labels"), dtype=object)
    rk = np.asarray(ranks, dtype=np.float64)
    ks = _check_ks(ks)
    if not (g.size == lab.size == rk.size) or rk.ndim != 1:
        raise InputError(f"groups ({g.size}), labels ({lab.size}) and ranks ({rk.size}) must be 1-D of one length")
    sc = None if score is None else np.asarray(score, dtype=np.float64)
    if sc is not None and (sc.shape != rk.shape or not np.all(np.isfinite(sc))):
        raise InputError(f"score must be {rk.size} finite values, got shape {sc.shape}")
    if int(min_group) != min_group or min_group < 1:
        raise ParameterError(f"min_group must be a positive integer, got {min_group}", parameter="min_group")
    is_control = lab == control
    affected_ranks = np.where(is_control, np.inf, rk)
    if np.isnan(affected_ranks).any() or (affected_ranks < 1).any():
        raise InputError("ranks of affected queries must be 1-based ranks (inf where the gallery lacks the condition)")
    rankable = ~is_control & np.isfinite(affected_ranks)
    rows = []
    for name in _group_order(set(g)):
        sel = g == name
        row = {"group": name, "n_queries": int(sel.sum()), "n_affected": int((sel & ~is_control).sum()),
               "n_control": int((sel & is_control).sum()), "n_ranked": int((sel & rankable).sum()),
               "n_conditions": len(set(lab[sel & rankable]))}
        row.update(_group_topk(affected_ranks[sel], lab[sel], rankable[sel], ks))
        row["control_auroc"] = _group_auroc(None if sc is None else sc[sel], is_control[sel])
        rows.append(row)
    gaps = {f"top{k}": _largest_gap(rows, f"top{k}", "n_ranked", int(min_group)) for k in ks}
    gaps["control_auroc"] = _largest_gap(rows, "control_auroc", "n_queries", int(min_group))
    return {"ks": list(ks), "min_group": int(min_group), "groups": rows, "gaps": gaps,
            "note": (f"groups with fewer than {int(min_group)} queries (affected queries the gallery can rank for "
                     f"top-k, all queries for the AUROC) are shown but left out of the largest gap")}
