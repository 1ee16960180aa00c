"""The validation document of a screening evaluation: markdown tables and matplotlib figures
(CMC curves, confusion matrix) from the JSON report of :func:`protocol.evaluate_settings`."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medface.errors import InputError, ParameterError

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
    appended = ["\n" + "\n".join(softmax_section(report)) + "\n"]
    if "mild" in report:
        mild = report["mild"]
        intro = (f"Mild cases, reported separately because they overlap the normal range by design "
                 f"(docs/phantom.md): every usable photo of `{mild_name}` is a query against the package's "
                 f"gallery ({mild['n_train_images']} photos). {mild['data']}")
        appended.append("\n" + "\n".join(extra_dataset_section("Mild cases", intro, mild)) + "\n")
    with open(doc, "a", encoding="utf-8") as fh:
        fh.write("".join(appended))
    return doc
