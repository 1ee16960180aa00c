"""`forensic train`: a skull-face model from a lab's own pairs folder (layout in :mod:`.train`).

Reads and checks the pairs (:func:`.train.read_pairs`), fits the joint model
(:func:`.train.train_from_pairs`), writes ``model.json`` + ``model.safetensors`` into ``out``
(the runner adds result.json and report.html beside them; :func:`.shape_model.load_model` reads
only the two model files) and reports the subjects, the components and a k-fold
cross-validated reconstruction error on the face (:func:`.train.cross_validate`).
"""

from __future__ import annotations

import time
from pathlib import Path

from medface.data import Result
from medface.errors import ParameterError

CV_FOLDS = 5
FEW_SUBJECTS = 30


def _inside(child: Path, parent: Path) -> bool:
    child, parent = child.resolve(), parent.resolve()
    return child == parent or parent in child.parents


def train_command(pairs, out, n_components: int | None = None, variance: float = 0.999, seed: int = 0, *,
                  sizes: dict | None = None) -> Result:
    """CLI entry of `forensic train`: train on ``pairs``, save the model into ``out``.

    ``sizes`` (Python only) overrides the vertex subset sizes of :data:`.train.DEFAULT_SUBSETS`."""
    from .shape_model import save_model
    from .train import cross_validate, pairs_subsets, read_pairs, train_from_pairs

    pairs, out = Path(pairs), Path(out)
    if _inside(out, pairs):
        if out.is_dir() and out.resolve() != pairs.resolve() and not any(out.iterdir()):
            out.rmdir()  # the empty folder the runner made: it would read as a subject next time
        raise ParameterError(f"the model folder {out} lies inside the pairs folder {pairs}", parameter="out",
                             hint="write the model outside the pairs folder")
    if n_components is not None and n_components < 1:
        raise ParameterError(f"must be at least 1, got {n_components}", parameter="n_components")
    t0 = time.perf_counter()
    data = read_pairs(pairs)
    t1 = time.perf_counter()
    model = train_from_pairs(data, sizes=sizes, seed=seed, n_components=n_components, variance=variance)
    t2 = time.perf_counter()
    cv = cross_validate(data, pairs_subsets(data, sizes=sizes, seed=seed), folds=CV_FOLDS, seed=seed,
                        n_components=n_components, variance=variance)
    t3 = time.perf_counter()
    timings = {"read": round(t1 - t0, 2), "fit": round(t2 - t1, 2), "cross_validation": round(t3 - t2, 2)}
    model.metadata["timing_s"] = timings
    if cv is not None:
        model.metadata["cross_validation"] = {k: v for k, v in cv.items() if k != "subjects"}
    save_model(model, out)

    n, q = len(data), model.n_components
    ev = float(model.metadata["explained_variance"])
    result = Result(command="forensic.train")
    result.summary = {"subjects": n, "components": q, "explained_variance": round(ev, 4),
                      "training_time_s": round(t3 - t0, 2), "model": str(out)}
    if cv is not None:
        result.summary["held_out_mean_mm"] = round(cv["model_mean_mm"], 3)
        result.summary["baseline_mean_mm"] = round(cv["baseline_mean_mm"], 3)
    result.metrics = {"n_subjects": n, "n_components": q, "explained_variance": ev,
                      "sigma2_mm2": float(model.sigma2),
                      "vertex_subsets": {"cranium": len(model.cranium_idx), "mandible": len(model.mandible_idx),
                                         "face": len(model.face_idx)},
                      "timings_s": timings}
    if cv is not None:
        result.metrics["cross_validation"] = {k: v for k, v in cv.items() if k != "subjects"}
    result.outputs = {"model": str(out / "model.json"), "weights": str(out / "model.safetensors")}
    result.tables["subjects"] = [{"id": s["id"], "sex": s["sex"], "age": s["age"], "bmi": s["bmi"]}
                                 for s in data.subjects]
    if cv is not None:
        result.tables["held-out reconstruction (face subset, mm)"] = cv["subjects"]
    else:
        result.warnings.append(f"No cross-validation: {n} subjects are too few to hold any out (each fold must "
                               "keep at least 4 for training).")
    if n < FEW_SUBJECTS:
        result.warnings.append(f"Only {n} subjects: the model has at most {n - 2} modes of variation and knows "
                               "little of the population; use dozens to hundreds of pairs for casework.")
    if n_components is not None and q < n_components:
        result.warnings.append(f"{n_components} components asked, {q} fitted: at most subjects - 2 are possible.")
    if not data.medface_topology:
        result.warnings.append("The meshes do not share the medface template's topology: `forensic reconstruct` "
                               "(which registers the medface template onto a skull) cannot use this model; "
                               "condition it in Python (ShapeModel.condition) on skulls in your correspondence.")
    if data.synthetic:
        result.warnings.append("Every subject is marked synthetic (phantom): the model shows what the phantom "
                               "population predicts, not real anatomy.")
    result.limits += [
        ("The model knows only the population of the pairs folder; faces of people unlike them are predicted "
         "with too little uncertainty."),
        ("The held-out errors are on subjects already in correspondence with the template (no registration "
         "error) and from the same folder: an optimistic figure for casework.")]
    result.data["model"] = model
    return result
