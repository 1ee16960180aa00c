"""The validation document of a screening evaluation: markdown tables and matplotlib figures
(CMC curves, confusion matrix) from the JSON report of :func:`protocol.evaluate_settings`, the
hits against chance and subgroup tables of `phenotype evaluate`, and the document of
`phenotype crossval` (mean [95 % CI] over splits)."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medface.errors import InputError, ParameterError

from . import protocol
from .protocol import CONTROL, DEFAULT_KS

_COLOURS = {"F/F": "#1f77b4", "R/R": "#d62728", "F/F+R": "#2ca02c", "R/F+R": "#9467bd"}
_SETTING_TEXT = {
    "F/F": "frequent-condition test images against the frequent-condition gallery",
    "R/R": "rare-condition test images against the rare-condition gallery",
    "F/F+R": "frequent-condition test images against the gallery of frequent and rare conditions",
    "R/F+R": "rare-condition test images against the gallery of frequent and rare conditions",
}


_SYNTHETIC_TEXT = ("**Data.** These results are computed on synthetic (phantom) data, not on photographs of "
                   "patients; they check that the evaluation runs correctly and say nothing about clinical "
                   "performance.")
_PROTOCOL_TEXT = ("**Protocol.** GestaltMatcher's GMDB benchmark (Hsieh et al., Nature Genetics 2022; "
                  "GestaltMatcher-Arc, WACV 2023): each test image is a query; the training images form the "
                  "gallery; conditions are ranked by the cosine distance to their nearest gallery image; "
                  "top-k accuracy is computed per condition and averaged over conditions. Train and test "
                  "are disjoint by subject. Chance is k / (number of gallery conditions).")


def _row(title: str, values: Mapping[str, float], ks: Sequence[int]) -> str:
    return f"| {title} | " + " | ".join(_pct(values.get(f"top{k}")) for k in ks) + " |"


def _md(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _pct(v) -> str:
    return "–" if v is None else f"{100.0 * float(v):.1f}%"


def _short(name: str, width: int = 32) -> str:
    """A condition name fit for an axis label: underscores as spaces, long names cut in the middle
    (the end often tells subtypes apart)."""
    name = name.replace("_", " ")
    if len(name) <= width:
        return name
    head = (width - 1) // 2
    return name[:head].rstrip() + "…" + name[len(name) - (width - 1 - head):].lstrip()


def _slug(setting: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", setting.replace("+", "plus")).strip("_")


def _plot_cmc(settings: Mapping[str, dict], ks: Sequence[int], out: Path) -> bool:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    ok = [(n, s) for n, s in settings.items() if s and s.get("cmc")]
    if not ok:
        return False
    fig = Figure(figsize=(6.4, 4.4), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for name, s in ok:
        cmc = np.asarray(s["cmc"], dtype=float)
        ranks = np.arange(1, cmc.size + 1)
        colour = _COLOURS.get(name)
        ax.plot(ranks, cmc, marker="o", markersize=3, color=colour, label=f"{name} (n={s['n_conditions']})")
        ax.plot(ranks, np.minimum(ranks / s["n_conditions"], 1.0), linestyle="--", linewidth=1, color=colour,
                alpha=0.6)
    for k in ks:
        ax.axvline(k, color="0.85", linewidth=0.8, zorder=0)
    ax.set_xlim(1, max(len(s["cmc"]) for _, s in ok))
    ax.set_ylim(0.0, 1.02)
    ax.set_xlabel("rank k")
    ax.set_ylabel("top-k accuracy (mean over conditions)")
    ax.set_title("Cumulative match characteristic (dashed: chance)")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(out, format="png")
    return True


def _plot_confusion(setting: dict, out: Path, max_conditions: int) -> str:
    """Draw the row-normalised top-1 confusion heatmap; returns a caption."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    labels = list(setting["confusion"]["labels"])
    cm = np.asarray(setting["confusion"]["matrix"], dtype=float)
    row_sums = cm.sum(axis=1)
    rows = np.flatnonzero(row_sums > 0)
    # the conditions with most queries (ties by name), shown in name order
    keep = sorted(sorted(rows, key=lambda i: (-row_sums[i], labels[i]))[:max_conditions])
    norm = cm[np.ix_(keep, keep)] / row_sums[keep][:, None]
    names = [_short(labels[i]) for i in keep]
    n = len(keep)
    # predictions on conditions without a row here (e.g. rare ones in F/F+R) go to an "other" column
    other = 1.0 - norm.sum(axis=1)
    has_other = bool(np.any(other > 1e-12))
    col_names = names + (["other (not shown)"] if has_other else [])
    if has_other:
        norm = np.concatenate([norm, np.clip(other, 0.0, 1.0)[:, None]], axis=1)
    side = max(4.5, 0.32 * n + 2.8)
    fig = Figure(figsize=(side + 1.0, side), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    im = ax.imshow(norm, cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest")
    fontsize = 8 if n <= 30 else 6
    ax.set_xticks(range(len(col_names)))
    ax.set_yticks(range(n))
    ax.set_xticklabels(col_names, rotation=90, fontsize=fontsize)
    ax.set_yticklabels(names, fontsize=fontsize)
    ax.set_xlabel("predicted condition (top-1)")
    ax.set_ylabel("true condition")
    ax.set_title(f"{setting['setting']}: top-1 confusion (rows normalised)")
    if n <= 15:
        for i in range(n):
            for j in range(len(col_names)):
                if norm[i, j] > 0:
                    ax.text(j, i, f"{norm[i, j]:.2f}", ha="center", va="center", fontsize=7,
                            color="white" if norm[i, j] > 0.5 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="fraction of the row's queries")
    fig.tight_layout()
    fig.savefig(out, format="png")
    caption = f"Top-1 confusion in {setting['setting']}, rows normalised by each true condition's queries."
    if n < rows.size:
        caption += f" Shows the {n} conditions with most test images, of {rows.size}."
    if has_other:
        caption += " The last column collects predictions of conditions that have no row in the figure."
    return caption


def write_validation_markdown(report: dict, path, figures_dir, *, confusion_setting: str | None = None,
                              max_heatmap_conditions: int = 25) -> Path:
    """Write the validation report as markdown with PNG figures; returns the markdown path.

    ``report`` is :func:`evaluate_settings`' dict, optionally with ``title`` and ``data`` (a
    description of the data; without it the data are declared synthetic phantoms). Figures go
    to ``figures_dir`` and are linked relative to the markdown file. The confusion heatmap shows
    ``confusion_setting`` (default: the first evaluated setting with a confusion matrix).
    """
    path = Path(path)
    figures_dir = Path(figures_dir)
    if "settings" not in report:
        raise InputError("report lacks 'settings'", hint="pass the dict returned by evaluate_settings")
    path.parent.mkdir(parents=True, exist_ok=True)
    figures_dir.mkdir(parents=True, exist_ok=True)
    ks = [int(k) for k in report.get("ks", DEFAULT_KS)]
    settings: dict[str, dict] = report["settings"]
    figures = _Figures(figures_dir, path.parent, confusion_setting, max_heatmap_conditions)
    lines = (_intro_lines(report) + _topk_lines(settings, ks) + _control_lines(report.get("control") or {})
             + _figure_lines(settings, ks, figures) + _per_condition_lines(settings, ks))
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


@dataclass(frozen=True)
class _Figures:
    """Where the figures go, the folder the document links them from, and the heatmap's choices."""

    folder: Path
    document_folder: Path
    confusion_setting: str | None = None
    max_heatmap_conditions: int = 25

    def link(self, p: Path) -> str:
        return os.path.relpath(p.resolve(), self.document_folder.resolve()).replace(os.sep, "/")


def _intro_lines(report: dict) -> list[str]:
    lines = [f"# {report.get('title', 'Facial gestalt screening: validation on the GMDB protocol')}", ""]
    data = report.get("data")
    lines += [f"**Data.** {data}", ""] if data else [_SYNTHETIC_TEXT, ""]
    lines += [_PROTOCOL_TEXT, ""]
    if report.get("n_images") is not None:
        lines += [(f"Images: {report['n_images']} ({report.get('n_train_images', '?')} train, "
                   f"{report.get('n_test_images', '?')} test); frequent conditions: "
                   f"{len(report.get('frequent', []))}, rare conditions: {len(report.get('rare', []))}; "
                   f"control label: `{report.get('control_label', CONTROL)}`."), ""]
    return lines


def _topk_lines(settings: Mapping[str, dict], ks: Sequence[int]) -> list[str]:
    lines = ["## Top-k accuracy by setting", ""]
    header = "| | " + " | ".join(f"top-{k}" for k in ks) + " |"
    rule = "|---|" + "---|" * len(ks)
    for name, s in settings.items():
        lines += [f"### {name}", "", f"{_SETTING_TEXT.get(name, name)}.", ""]
        if s is None or s.get("skipped"):
            lines += [f"Skipped: {(s or {}).get('skipped', 'not evaluated')}.", ""]
            continue
        lines.append(f"{s['n_queries']} queries ({s['n_query_subjects']} subjects, {s['n_query_conditions']} "
                     f"conditions) against {s['n_gallery_images']} gallery images of {s['n_conditions']} "
                     "conditions.")
        if s.get("n_queries_without_gallery"):
            lines.append(f"{s['n_queries_without_gallery']} test images of conditions without gallery images "
                         "were left out.")
        lines += ["", header, rule,
                  _row("model (mean over conditions)", s["top_k"], ks),
                  _row("model (pooled over images)", s.get("top_k_per_image") or {}, ks),
                  _row("chance", s["chance"], ks), ""]
    return lines


def _control_lines(ctrl: dict) -> list[str]:
    lines = ["## Affected versus control", ""]
    if ctrl.get("auroc") is not None:
        return lines + [(f"AUROC {float(ctrl['auroc']):.3f} ({ctrl.get('n_affected', '?')} affected and "
                         f"{ctrl.get('n_control', '?')} control test images; 0.5 is chance). Score: "
                         f"{ctrl.get('score', 'syndromic score')}."), ""]
    return lines + [f"Control AUROC not computed: {ctrl.get('reason') or 'no control data in the report'}.", ""]


def _figure_lines(settings: Mapping[str, dict], ks: Sequence[int], figures: _Figures) -> list[str]:
    """Draw the CMC curves and the confusion heatmap; the lines that show them."""
    lines = ["## Figures", ""]
    cmc_png = figures.folder / "cmc.png"
    if _plot_cmc(settings, ks, cmc_png):
        lines += [f"![Cumulative match characteristic of the evaluated settings]({figures.link(cmc_png)})", "",
                  ("Cumulative match characteristic: top-k accuracy (mean over conditions) against k, "
                   "one curve per setting; dashed lines are chance."), ""]
    else:
        lines += ["No setting was evaluated, so no CMC curve.", ""]
    with_cm = [n for n, s in settings.items() if s and s.get("confusion")]
    chosen = figures.confusion_setting if figures.confusion_setting is not None else (with_cm[0] if with_cm
                                                                                       else None)
    if chosen is not None and chosen not in with_cm:
        raise ParameterError(f"confusion_setting {chosen!r} has no confusion matrix; settings with one: {with_cm}",
                             parameter="confusion_setting")
    if chosen is not None:
        cm_png = figures.folder / f"confusion_{_slug(chosen)}.png"
        caption = _plot_confusion(settings[chosen], cm_png, figures.max_heatmap_conditions)
        lines += [f"![Top-1 confusion matrix, {chosen}]({figures.link(cm_png)})", "", caption, ""]
    return lines


def _per_condition_lines(settings: Mapping[str, dict], ks: Sequence[int]) -> list[str]:
    lines = ["## Per-condition results", ""]
    for name, s in settings.items():
        if not s or s.get("skipped") or not s.get("per_condition"):
            continue
        lines += [f"### {name}", "", "| condition | test images | " + " | ".join(f"top-{k}" for k in ks) + " |",
                  "|---|---|" + "---|" * len(ks)]
        for row in s["per_condition"]:
            lines.append(f"| {_md(row['condition'])} | {row['n_queries']} | "
                         + " | ".join(_pct(row.get(f"top{k}")) for k in ks) + " |")
        lines.append("")
    return lines


def softmax_section(report: dict) -> list[str]:
    """Markdown lines for the softmax head (trained conditions only) and its calibration."""
    soft = report.get("softmax") or {}
    if not soft.get("top_k"):
        return []
    ks = [int(k) for k in report.get("ks", DEFAULT_KS)]
    return ["## Softmax head", "",
            f"The classifier head ranks only the {soft['n_conditions']} conditions it was trained on; "
            f"{soft['n_queries']} test photos of those conditions. Expected calibration error of the "
            f"temperature-scaled probabilities over all test photos of trained classes (controls included): "
            f"{soft.get('ece', float('nan')):.3f}.", "",
            "| | " + " | ".join(f"top-{k}" for k in ks) + " |", "|---|" + "---|" * len(ks),
            _row("softmax head", soft["top_k"], ks), _row("chance", soft["chance"], ks), ""]


def extra_dataset_section(title: str, intro: str, report: dict) -> list[str]:
    """Markdown lines for a second data set evaluated against the package's gallery."""
    ks = [int(k) for k in report.get("ks", DEFAULT_KS)]
    head = "| setting | queries | conditions | " + " | ".join(f"top-{k}" for k in ks) + " |"
    lines = [f"## {title}", "", intro, "", head, "|" + "---|" * (3 + len(ks))]

    for name, s in report["settings"].items():
        if s is None or s.get("skipped"):
            continue
        tk, ch = s.get("top_k") or {}, s.get("chance") or {}
        lines.append(f"| {name} | {s.get('n_queries')} | {s.get('n_conditions')} | "
                     + " | ".join(f"{_pct(tk.get(f'top{k}'))} (chance {_pct(ch.get(f'top{k}'))})" for k in ks) + " |")
    soft = report.get("softmax") or {}
    if soft.get("top_k"):
        lines.append(f"| softmax head | {soft['n_queries']} | {soft['n_conditions']} | "
                     + " | ".join(f"{_pct(soft['top_k'].get(f'top{k}'))} (chance {_pct(soft['chance'].get(f'top{k}'))})"
                                  for k in ks) + " |")
    ctrl = report.get("control") or {}
    lines += ["", f"Control AUROC: {ctrl['auroc']:.3f} ({ctrl['n_affected']} affected, {ctrl['n_control']} control "
                  f"photos)." if ctrl.get("auroc") is not None else f"Control AUROC: not computed "
                                                                       f"({ctrl.get('reason')}).", ""]
    per = (report["settings"].get("F/F+R") or {}).get("per_condition") or []
    if per:
        lines += ["Per condition (F/F+R):", "", "| condition | photos | " + " | ".join(f"top-{k}" for k in ks) + " |",
                  "|" + "---|" * (2 + len(ks))]
        lines += [f"| {r['condition']} | {r['n_queries']} | " + " | ".join(_pct(r.get(f"top{k}")) for k in ks) + " |"
                  for r in per]
        lines.append("")
    return lines


def write_evaluation(report: dict, out, *, mild_name: str | None = None) -> Path:
    """Write an evaluation into ``out``: ``evaluation.json``, the validation document
    ``phenotype.md`` (with the softmax head and, when the report has them, the mild cases) and its
    ``figures/``. Returns the document's path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "evaluation.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    doc = write_validation_markdown(report, out / "phenotype.md", out / "figures")
    appended = ["\n" + "\n".join(softmax_section(report) + distribution_section(report) + counts_section(report)
                                  + subgroup_section(report.get("subgroups") or {})) + "\n"]
    if "mild" in report:
        mild = report["mild"]
        intro = (f"Mild cases, reported separately because they overlap the normal range by design "
                 f"(docs/phantom.md): every usable photo of `{mild_name}` is a query against the package's "
                 f"gallery ({mild['n_train_images']} photos). {mild['data']}")
        appended.append("\n" + "\n".join(extra_dataset_section("Mild cases", intro, mild)
                                          + counts_section(mild, title="Mild cases: hits against chance")
                                          + subgroup_section(mild.get("subgroups") or {},
                                                             title="Mild cases: subgroups")) + "\n")
    with open(doc, "a", encoding="utf-8") as fh:
        fh.write("".join(appended))
    return doc


def _rate_cell(part: Mapping | None) -> str:
    if not part or not part.get("n"):
        return "-"
    return f"{_pct(part['rate'])} ({part['in_distribution']} / {part['n']})"


def distribution_section(report: dict) -> list[str]:
    """The out-of-distribution gate: how many held-out queries (and mild cases, and unlabelled
    real photos) it lets through."""
    dist = report.get("distribution") or {}
    if not dist.get("gate"):
        return ["", "## Out-of-distribution gate", "", _sentence(dist.get("reason") or "not evaluated")]
    lines = ["", "## Out-of-distribution gate", "",
             f"Gate: {dist['gate']}; threshold {dist['threshold']:.4g}, the {_pct(dist['quantile'])} quantile of "
             "the validation photos' scores (photos the Gaussians never saw). Off-distribution faces get no "
             "probabilities and no syndromic score when screened.", "",
             "| photos | in-distribution |", "|---|---|",
             f"| held-out queries of this evaluation | {_rate_cell(dist)} |"]
    lines += [f"| ... style `{_md(st)}` | {_rate_cell(part)} |" for st, part in (dist.get("by_style") or {}).items()]
    mild = (report.get("mild") or {}).get("distribution") or {}
    if mild.get("gate"):
        lines.append(f"| mild cases | {_rate_cell(mild)} |")
    real = report.get("unlabelled") or {}
    if real:
        lines.append(f"| {_md(real['description'])} | {_rate_cell(real)} |")
        lines += ["", f"Of the {real['n']} unlabelled photos, {real['screened']} passed the quality gate; "
                  f"{real['with_probabilities']} were given probabilities or a syndromic score. File names are not "
                  "recorded."]
    return lines + [""]


# --------------------------------------------------------------------------------------------
# hits against chance, subgroups, cross-validation
# --------------------------------------------------------------------------------------------

_BINOMIAL_TEXT = ("Hits pooled over images (successes / queries) and the one-sided exact binomial p-value "
                  "that the hit rate exceeds chance (scipy.stats.binomtest, H1: rate > chance). The test "
                  "treats every photo as independent; several photos of one subject are not, so p is "
                  "optimistic when subjects have several photos.")
_INTERVAL_TEXT = ("Intervals are Student-t 95 % intervals of the mean over splits, clipped to [0, 1]; a "
                  "figure from a single split has none. The splits share most "
                  "subjects, so they are narrower than the spread a new data set would show (Nadeau & Bengio, "
                  "Machine Learning 52:239-281, 2003): they say how much a figure moves with the split, not how "
                  "it would generalise.")


def p_text(p) -> str:
    """A p-value as printed in the tables: ``p<0.001`` or ``p=0.012``."""
    if p is None:
        return "–"
    return "p<0.001" if float(p) < 0.001 else f"p={float(p):.3f}"


def interval_text(mi: Mapping | None, *, percent: bool = True) -> str:
    """A :func:`protocol.mean_interval` as ``86.2% [84.0, 88.4]`` (percent) or ``0.893 [0.871,
    0.915]``; without brackets when there is no interval, a dash when there is no figure."""
    if mi is None:
        return "–"
    scale, digits, unit = (100.0, 1, "%") if percent else (1.0, 3, "")
    text = f"{scale * mi['mean']:.{digits}f}{unit}"
    if mi.get("low") is not None:
        text += f" [{scale * mi['low']:.{digits}f}, {scale * mi['high']:.{digits}f}]"
    return text


def _count_cell(c: Mapping | None) -> str:
    return "–" if not c else f"{c['successes']}/{c['n']} ({p_text(c['p_value'])})"


def counts_section(report: dict, *, title: str = "Hits against chance") -> list[str]:
    """Markdown lines: hits against chance for every top-k of every setting (and the softmax head)."""
    ks = [int(k) for k in report.get("ks", DEFAULT_KS)]
    rows = [(name, s["counts"]) for name, s in report.get("settings", {}).items() if s and s.get("counts")]
    soft = (report.get("softmax") or {}).get("counts")
    if soft:
        rows.append(("softmax head", soft))
    if not rows:
        return []
    lines = [f"## {title}", "", _BINOMIAL_TEXT, "",
             "| setting | " + " | ".join(f"top-{k}" for k in ks) + " |", "|---|" + "---|" * len(ks)]
    lines += [f"| {name} | " + " | ".join(_count_cell(c.get(f"top{k}")) for k in ks) + " |" for name, c in rows]
    return lines + [""]


def _sentence(text: str) -> str:
    """``text`` with a capital first letter and a full stop."""
    return (text[:1].upper() + text[1:]).rstrip(".") + "."


def _auroc_text(v) -> str:
    return "–" if v is None else f"{float(v):.3f}"


def _gap_text(gap: Mapping | None, figure: str) -> str:
    if not gap:
        return f"{figure}: fewer than two groups large enough"
    size = f"{100.0 * gap['gap']:.1f} points" if figure != "control AUROC" else f"{gap['gap']:.3f}"
    order = f"{gap['highest']} above {gap['lowest']}" if gap["gap"] > 0 else "all equal"
    return f"{figure} {size} ({order})"


def _subgroup_intro(min_group: int) -> str:
    return ("Within each group: top-1 and top-5 of the affected test photos against the gallery of frequent and "
            "rare conditions (per condition, then averaged over the group's conditions) and the control AUROC "
            "of the syndromic score. Groups marked * have fewer than "
            f"{min_group} queries counted by a figure (affected photos the gallery can rank for top-k, all "
            "photos for the AUROC); they are shown but left out of that figure's largest gap, and so is "
            "the missing group.")


def _small(row: Mapping, min_group: int) -> str:
    """`` *`` after a group left out of some largest gap (too small, or the missing group)."""
    small = row["n_ranked"] < min_group or row["n_queries"] < min_group
    return " *" if small or row["group"] == protocol.MISSING_GROUP else ""


def subgroup_section(subgroups: Mapping[str, dict], *, title: str = "Subgroups") -> list[str]:
    """Markdown lines for :func:`evaluate.subgroup_tables`: one table per grouping with its largest gaps."""
    if not subgroups:
        return []
    min_group = next((t["min_group"] for t in subgroups.values() if t.get("available")), 10)
    lines = [f"## {title}", "", _subgroup_intro(min_group), ""]
    for name, table in subgroups.items():
        lines += [f"### {name}", ""]
        if not table.get("available"):
            lines += [_sentence(table["reason"]), ""]
            continue
        ks = table["ks"]
        lines += ["| group | photos | affected (ranked) | controls | " + " | ".join(f"top-{k}" for k in ks)
                  + " | control AUROC |", "|---|---|---|---|" + "---|" * (len(ks) + 1)]
        for r in table["groups"]:
            lines.append(f"| {_md(r['group'])}{_small(r, min_group)} | {r['n_queries']} | {r['n_affected']} "
                         f"({r['n_ranked']}) | {r['n_control']} | "
                         + " | ".join(_pct(r.get(f"top{k}")) for k in ks) + f" | {_auroc_text(r['control_auroc'])} |")
        gaps = [_gap_text(table["gaps"].get(f"top{k}"), f"top-{k}") for k in ks]
        gaps.append(_gap_text(table["gaps"].get("control_auroc"), "control AUROC"))
        lines += ["", "Largest gap: " + "; ".join(gaps) + ".", ""]
    return lines


def _crossval_intro(report: dict) -> list[str]:
    first, last = report["seed"], report["seed"] + report["splits"] - 1
    return [f"# Cross-validation on `{report['data']}`", "",
            (f"**Protocol.** {report['protocol']}. {report['splits']} splits (seeds {first}-{last}); test "
             f"fraction {report['test_fraction']}, validation fraction {report['val_fraction']} of the rest; "
             f"{len(report['frequent'])} frequent and {len(report['rare'])} rare conditions, decided once on the "
             f"whole data set. {_sentence(report['rare_cap']['note'])}"), "",
            _INTERVAL_TEXT, ""]


def _crossval_settings_lines(report: dict) -> list[str]:
    ks = [int(k) for k in report["ks"]]
    lines = ["## Top-k by setting (mean [95 % CI] over splits)", ""]
    header = ["| method | splits | " + " | ".join(f"top-{k}" for k in ks) + " |", "|---|---|" + "---|" * len(ks)]
    for setting in _SETTING_TEXT:
        lines += [f"### {setting}", "", f"{_SETTING_TEXT[setting]}.", ""] + header
        for name, block in report["methods"].items():
            s = block["summary"]["settings"][setting]
            lines.append(f"| {_md(name)} | {s['n_splits']} | " + " | ".join(interval_text(s.get(f"top{k}"))
                                                                            for k in ks) + " |")
        chance = next((run["settings"][setting]["chance"] for b in report["methods"].values()
                       for run in b["per_split"] if run["settings"][setting].get("chance")), None)
        if chance:
            lines.append("| chance (first split) | | " + " | ".join(_pct(chance.get(f"top{k}")) for k in ks) + " |")
        lines.append("")
    return lines


def _crossval_head_lines(report: dict) -> list[str]:
    ks = [int(k) for k in report["ks"]]
    lines = ["## Softmax head and control AUROC (mean [95 % CI] over splits)", "",
             "| method | " + " | ".join(f"softmax top-{k}" for k in ks) + " | control AUROC | score |",
             "|---|" + "---|" * (len(ks) + 2)]
    for name, block in report["methods"].items():
        s = block["summary"]
        score = _md(s.get("control_score") or "–")
        lines.append(f"| {_md(name)} | " + " | ".join(interval_text(s["softmax"].get(f"top{k}")) for k in ks)
                     + f" | {interval_text(s['control_auroc'], percent=False)} | {score} |")
    return lines + [""]


def _crossval_counts_lines(report: dict) -> list[str]:
    ks = [int(k) for k in report["ks"]]
    lines = ["## Hits against chance, per split", "", _BINOMIAL_TEXT + " Splits share photos, so their counts "
             "are not pooled.", ""]
    for name, block in report["methods"].items():
        runs = block["per_split"]
        lines += [f"### {name}", "", "| setting | top-k | " + " | ".join(f"seed {r['seed']}" for r in runs) + " |",
                  "|---|---|" + "---|" * len(runs)]
        for setting in _SETTING_TEXT:
            for k in ks:
                cells = [_count_cell((r["settings"][setting].get("counts") or {}).get(f"top{k}")) for r in runs]
                lines.append(f"| {setting} | top-{k} | " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def _crossval_subgroup_lines(report: dict) -> list[str]:
    tables = [t for b in report["methods"].values() for t in b["summary"]["subgroups"].values()]
    min_group = next((t["min_group"] for t in tables if t.get("available")), protocol.MIN_GROUP_QUERIES)
    lines = ["## Subgroups (mean [95 % CI] over splits)", "",
             _subgroup_intro(min_group).replace("Groups marked * have", "In each split, groups that have")
             + " The largest gap is averaged over the splits where at least two groups were large enough; "
               "photos are summed over splits.", ""]
    for name, block in report["methods"].items():
        for grouping, table in block["summary"]["subgroups"].items():
            lines += [f"### {name}: {grouping}", ""]
            if not table.get("available"):
                lines += [_sentence(table["reason"]), ""]
                continue
            ks = table["ks"]
            lines += ["| group | photos | " + " | ".join(f"top-{k}" for k in ks) + " | control AUROC |",
                      "|---|---|" + "---|" * (len(ks) + 1)]
            for r in table["groups"]:
                lines.append(f"| {_md(r['group'])} | {r['n_queries']} | "
                             + " | ".join(interval_text(r.get(f"top{k}")) for k in ks)
                             + f" | {interval_text(r['control_auroc'], percent=False)} |")
            gaps = [f"top-{k} {interval_text(table['gaps'].get(f'top{k}'))}" for k in ks]
            gaps.append(f"control AUROC {interval_text(table['gaps'].get('control_auroc'), percent=False)}")
            lines += ["", "Largest gap: " + "; ".join(gaps) + ".", ""]
    return lines


def crossval_markdown(report: dict) -> str:
    """The cross-validation document: mean [95 % CI] tables per setting and method, the softmax
    head and control AUROC, the binomial counts of each split and the subgroup tables."""
    if "methods" not in report:
        raise InputError("report lacks 'methods'", hint="pass the dict returned by crossval.cross_validate")
    return "\n".join(_crossval_intro(report) + _crossval_settings_lines(report) + _crossval_head_lines(report)
                     + _crossval_subgroup_lines(report) + _crossval_counts_lines(report))


def write_crossval(report: dict, out) -> Path:
    """Write ``crossval.json`` and the document ``crossval.md`` into ``out``; returns the document's path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "crossval.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    doc = out / "crossval.md"
    doc.write_text(crossval_markdown(report), encoding="utf-8")
    return doc
