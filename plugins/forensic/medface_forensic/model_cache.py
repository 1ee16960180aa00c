"""The default skull-face model: trained on the synthetic phantom population on first use, cached.

The model is too large to ship (about 26 MB), so the first call trains it (about 2 minutes on
two cores) and keeps it in the medface cache (:mod:`medface.cache`, namespace ``forensic``).
The cache entry is keyed by exactly what the model depends on:

- the template data file's sha256 (:mod:`.template`: the topology and the vertex subsets),
- the training parameters (subjects, cohort seed, vertex subset sizes, calibration cohort),
- :data:`MODEL_VERSION`, raised by hand whenever the training code or the phantom population
  it learns from changes in a way that changes the model.

Editing unrelated code (the phantom's photos, this plugin's commands) therefore never retrains
it. A new entry prunes the older ones with the same prefix; concurrent first uses wait on a
file lock and train once.
"""

from __future__ import annotations

import os

from medface import cache

#: raise when the model's training code or the phantom population it learns from changes
#: 2: the phantom faces follow the literature tissue prior (medface_forensic.tissue_prior, issue 16)
#: 3: the tissue prior's sex, age and BMI effect carried explicitly (shape_model covariate_effect)
MODEL_VERSION = 3
DEFAULT_SUBJECTS, DEFAULT_SEED = 200, 0
NAMESPACE = "forensic"


def model_key() -> str:
    """The cache key of the default model (see the module docstring)."""
    from .shape_model import FORMAT_VERSION
    from .template import template_head
    from .train import CALIBRATION_SEED_OFFSET, DEFAULT_SUBSETS

    params = {"subjects": DEFAULT_SUBJECTS, "seed": DEFAULT_SEED, "subsets": DEFAULT_SUBSETS,
              "calibration_seed_offset": CALIBRATION_SEED_OFFSET, "format_version": FORMAT_VERSION}
    return cache.key(template_head().sha256, f"model-v{MODEL_VERSION}", sorted(params.items()))


def default_model_folder():
    """Where the default model is (or will be) cached."""
    return cache.folder(NAMESPACE) / f"phantom-n{DEFAULT_SUBJECTS}-s{DEFAULT_SEED}-{model_key()}"


def default_model():
    """The phantom-trained model, from the cache or trained now (once; see the module docstring)."""
    from .shape_model import load_model, save_model
    from .train import train_phantom_model

    folder = default_model_folder()
    if (folder / "model.json").is_file():
        return load_model(folder)
    with cache.file_lock(folder.with_name(folder.name + ".lock")):
        if (folder / "model.json").is_file():  # another process trained it while we waited
            return load_model(folder)
        model = train_phantom_model(DEFAULT_SUBJECTS, DEFAULT_SEED)
        tmp = folder.with_name(folder.name + f".{os.getpid()}.tmp")
        try:
            save_model(model, tmp)
            os.replace(tmp, folder)
        except OSError:  # a read-only or full cache: slower next time, never wrong
            return model
        cache.prune(folder)
    return load_model(folder)
