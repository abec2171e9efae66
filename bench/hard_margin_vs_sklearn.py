"""Benchmark: ``hard_margins`` against scikit-learn's ``LinearSVC(multi_class="crammer_singer")``.

One synthetic separable layer per size: Gaussian classes seen through a random map whose singular
values span ``--decades`` orders of magnitude, then standardised (as probe features are). Both sides
solve the no-intercept problem (``bias=False``, ``fit_intercept=False``); scikit-learn gets a large C.
Prints wall-clock seconds side by side, their ratio, and each side's certified margin
min_{i,j≠y_i} (w_{y_i} − w_j)·x_i / ‖W‖_F (a feasible direction's margin, so larger is better).

    .venv/bin/python bench/hard_margin_vs_sklearn.py [--sizes 2000x256x20 5000x1024x40 --device cpu]
"""

import argparse
import time

import numpy as np
from sklearn.svm import LinearSVC

from s3prl_mi_probe.analyses.hard_margin import hard_margins


def separable_layer(num_rows, dim, num_classes, decades, seed=0):
    """Standardised float32 features ``[N, D]`` and labels ``[N]`` of well separated, correlated classes."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, num_classes, num_rows)
    features = 3 * rng.standard_normal((num_classes, dim))[labels] / np.sqrt(dim) + rng.standard_normal((num_rows, dim))
    rotation, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    features = features @ (rotation * np.logspace(0, -decades, dim)) @ rotation.T
    return ((features - features.mean(0)) / features.std(0)).astype(np.float32), labels


def sklearn_margin(features, labels, cost):
    """Certified margin of scikit-learn's Crammer–Singer fit, or NaN if it does not separate."""
    weight = LinearSVC(multi_class="crammer_singer", C=cost, fit_intercept=False, tol=1e-6, max_iter=100_000)
    weight = weight.fit(features, labels).coef_.T.astype(np.float64)
    scores = features.astype(np.float64) @ weight
    rows = np.arange(len(labels))
    gaps = scores[rows, labels][:, None] - scores
    gaps[rows, labels] = np.inf
    margin = gaps.min() / np.linalg.norm(weight)
    return margin if margin > 0 else float("nan")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", nargs="+", default=["2000x256x20", "5000x512x40", "5000x1024x40"], help="rows x dim x classes"
    )
    parser.add_argument("--decades", type=float, default=2.0, help="spread of the feature map's singular values")
    parser.add_argument("--cost", type=float, default=1e4, help="scikit-learn's C")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    print(
        f"{'size':>14} {'ours_s':>8} {'sklearn_s':>9} {'speed-up':>8} {'margin_ours':>11} {'margin_sklearn':>14} "
        f"{'rel_diff':>9}"
    )
    for size in args.sizes:
        num_rows, dim, num_classes = (int(part) for part in size.split("x"))
        features, labels = separable_layer(num_rows, dim, num_classes, args.decades)
        start = time.perf_counter()
        ours = hard_margins(features[None], labels, device=args.device, bias=False)[0]
        ours_s = time.perf_counter() - start
        start = time.perf_counter()
        reference = sklearn_margin(features, labels, args.cost)
        sklearn_s = time.perf_counter() - start
        print(
            f"{size:>14} {ours_s:>8.2f} {sklearn_s:>9.2f} {sklearn_s / ours_s:>7.1f}x {ours:>11.5f} "
            f"{reference:>14.5f} {ours / reference - 1:>+9.2e}"
        )


if __name__ == "__main__":
    main()
