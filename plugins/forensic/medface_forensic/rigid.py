"""Least-squares similarity and rigid transforms between corresponding point sets (Umeyama 1991)."""

from __future__ import annotations

import numpy as np


def similarity(src: np.ndarray, dst: np.ndarray, weights: np.ndarray | None = None, scale: bool = True):
    """Weighted least-squares ``dst ~ s R src + t`` (Umeyama 1991); returns (s, R, t)."""
    w = np.ones(len(src)) if weights is None else weights
    w = w / w.sum()
    ms, md = w @ src, w @ dst
    a, b = src - ms, dst - md
    cov = (b * w[:, None]).T @ a
    u, sig, vt = np.linalg.svd(cov)
    d = np.ones(3)
    d[2] = np.sign(np.linalg.det(u @ vt)) or 1.0
    r = u @ np.diag(d) @ vt
    s = float((sig * d).sum() / (w @ (a * a).sum(1))) if scale else 1.0
    return s, r, md - s * r @ ms


def kabsch(source: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rigid transform (R, t) minimising ``|| source @ R.T + t - target ||`` (no scaling)."""
    _, r, t = similarity(np.asarray(source, float), np.asarray(target, float), scale=False)
    return r, t
