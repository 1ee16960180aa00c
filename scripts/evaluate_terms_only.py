"""HPO-only figures of issue 19: simulated patients of the phantom's syndrome catalogue, ranked by
their recorded terms alone (run: .venv/bin/python scripts/evaluate_terms_only.py [patients] [seed])."""

from __future__ import annotations

import json
import sys
import time

import numpy as np

from medface_phenotype import hpo_annotations as HA
from medface_phenotype import simulated_patients as P
from medface_phenotype import syndromes as S


def main(patients: int = 300, seed: int = 0) -> dict:
    diseases = HA.release_diseases()
    catalogue = [diseases[s.id] for s in S.catalogue().syndromes]
    rng = np.random.default_rng(seed)
    pool = P.noise_pool(catalogue)
    chosen = rng.choice(len(catalogue), patients, replace=False)
    simulated = [P.simulate_patient(catalogue[i], rng, pool) for i in chosen]
    start = time.perf_counter()
    result = P.evaluate_terms_only(simulated, catalogue).to_dict()
    result.update(seed=seed, seconds=round(time.perf_counter() - start, 1), release=HA.annotation_release(),
                  simulation={"max_terms": P.MAX_TERMS, "imprecision": P.IMPRECISION, "noise_mean": P.NOISE_MEAN})
    return result


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    print(json.dumps(main(*args), indent=1))
