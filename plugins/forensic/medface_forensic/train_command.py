"""`forensic train`: a skull-face model from a lab's own pairs folder (layout in :mod:`.train`).

Reads and checks the pairs (:func:`.train.read_pairs`), fits the joint model
(:func:`.train.train_from_pairs`), writes ``model.json`` + ``model.safetensors`` into ``out``
(the runner adds result.json and report.html beside them; :func:`.shape_model.load_model` reads
only the two model files) and reports the subjects, the components and a k-fold
cross-validated reconstruction error on the face (:func:`.train.cross_validate`).
"""

from __future__ import annotations

from pathlib import Path

from medface.data import Result
from medface.errors import ParameterError

CV_FOLDS = 5
FEW_SUBJECTS = 30
LIMITS = [("The model knows only the population of the pairs folder; faces of people unlike them are predicted "
           "with too little uncertainty."),
          ("The held-out errors are on subjects already in correspondence with the template (no registration "
           "error) and from the same folder: an optimistic figure for casework.")]


def _inside(child: Path, parent: Path) -> bool:
    child, parent = child.resolve(), parent.resolve()
    return child == parent or parent in child.parents


def _check_parameters(pairs: Path, out: Path, n_components: int | None) -> None:
    if _inside(out, pairs):
        if out.is_dir() and out.resolve() != pairs.resolve() and not any(out.iterdir()):
            out.rmdir()  # the empty folder the runner made: it would read as a subject next time
        raise ParameterError(f"the model folder {out} lies inside the pairs folder {pairs}", parameter="out",
                             hint="write the model outside the pairs folder")
    if n_components is not None and n_components < 1:
        raise ParameterError(f"must be at least 1, got {n_components}", parameter="n_components")


def train_command(pairs, out, n_components: int | None = None, variance: float = 0.999, seed: int = 0, *,
                  sizes: dict | None = None, context=None) -> Result:
    """CLI entry of `forensic train`: train on ``pairs``, save the model into ``out``.

    ``sizes`` (Python only) overrides the vertex subset sizes of :data:`.train.DEFAULT_SUBSETS`.
    The model package is written last, by :func:`.shape_model.save_model` (the plugin's model
    writer: two files in a layout of its own)."""
    from .shape_model import save_model
    from .train import train_and_validate

    pairs, out = Path(pairs), Path(out)
    _check_parameters(pairs, out, n_components)
    run = train_and_validate(pairs, n_components=n_components, variance=variance, seed=seed, sizes=sizes,
                             folds=CV_FOLDS, progress=context.stage if context is not None else None)
    result = Result(command="forensic.train", summary=_summary(run, out), metrics=_metrics(run),
                    warnings=_warnings(run, n_components), limits=list(LIMITS))
    result.tables["subjects"] = [{"id": s["id"], "sex": s["sex"], "age": s["age"], "bmi": s["bmi"]}
                                 for s in run.pairs.subjects]
    if run.cross_validation is not None:
        result.tables["held-out reconstruction (face subset, mm)"] = run.cross_validation["subjects"]
    result.data["model"] = run.model
    save_model(run.model, out)
    result.outputs = {"model": str(out / "model.json"), "weights": str(out / "model.safetensors")}
    return result


def _summary(run, out: Path) -> dict:
    model, cv = run.model, run.cross_validation
    summary = {"subjects": len(run.pairs), "components": model.n_components,
               "explained_variance": round(float(model.metadata["explained_variance"]), 4),
               "training_time_s": round(sum(run.timings_s.values()), 2), "model": str(out)}
    if cv is not None:
        summary["held_out_mean_mm"] = round(cv["model_mean_mm"], 3)
        summary["baseline_mean_mm"] = round(cv["baseline_mean_mm"], 3)
    return summary


def _metrics(run) -> dict:
    model, cv = run.model, run.cross_validation
    metrics = {"n_subjects": len(run.pairs), "n_components": model.n_components,
               "explained_variance": float(model.metadata["explained_variance"]), "sigma2_mm2": float(model.sigma2),
               "vertex_subsets": {"cranium": len(model.cranium_idx), "mandible": len(model.mandible_idx),
                                  "face": len(model.face_idx)},
               "timings_s": run.timings_s}
    if cv is not None:
        metrics["cross_validation"] = {k: v for k, v in cv.items() if k != "subjects"}
    return metrics


def _warnings(run, n_components: int | None) -> list[str]:
    n, q, data = len(run.pairs), run.model.n_components, run.pairs
    warnings = []
    if run.cross_validation is None:
        warnings.append(f"No cross-validation: {n} subjects are too few to hold any out (each fold must keep at "
                        "least 4 for training).")
    if n < FEW_SUBJECTS:
        warnings.append(f"Only {n} subjects: the model has at most {n - 2} modes of variation and knows little of "
                        "the population; use dozens to hundreds of pairs for casework.")
    if n_components is not None and q < n_components:
        warnings.append(f"{n_components} components asked, {q} fitted: at most subjects - 2 are possible.")
    if not data.medface_topology:
        warnings.append("The meshes do not share the medface template's topology: `forensic reconstruct` (which "
                        "registers the medface template onto a skull) cannot use this model; condition it in "
                        "Python (ShapeModel.condition) on skulls in your correspondence.")
    if data.synthetic:
        warnings.append("Every subject is marked synthetic (phantom): the model shows what the phantom population "
                        "predicts, not real anatomy.")
    return warnings
