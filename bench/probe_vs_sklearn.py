"""Benchmark: ``probe_layers`` against scikit-learn LogisticRegression fitted per layer, C tuned on dev.

Synthetic data shaped like a probe job: Gaussian classes with Zipf-like priors whose separability
rises then falls over the layers, seen through a random linear map per layer. Both sides get the same
train/dev/test split, the same standardisation and the same L2 grid (C = 1 / (l2 * N_train)).
Prints test CE per layer for both, the difference, and the wall-clock ratio.

    .venv/bin/python bench/probe_vs_sklearn.py [--layers 13 --train 5000 --dim 256 --classes 40]
    .venv/bin/python bench/probe_vs_sklearn.py --easy --layers 4 --train 10800 --eval 2700
"""

import argparse
import time

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss

from s3prl_mi_probe.probe.train import DEFAULT_L2_GRID, probe_layers


def synthetic_layers(num_layers, sizes, dim, num_classes, seed=0, easy=False):
    """``[(X [L, n, D], y [n]) for n in sizes]`` with layer-dependent class separability.

    ``easy``: isotropic classes of one moderate separability on every layer, no mixing (a
    well-conditioned problem on which lbfgs needs few iterations).
    """
    rng = np.random.default_rng(seed)
    prior = 1.0 / np.arange(1, num_classes + 1) ** 0.7
    labels = rng.choice(num_classes, size=sum(sizes), p=prior / prior.sum())
    means = rng.standard_normal((num_classes, dim)) / np.sqrt(dim)
    separability = 1.0 + 2.5 * np.sin(np.pi * np.arange(num_layers) / max(num_layers - 1, 1))
    features = np.empty((num_layers, labels.size, dim), dtype=np.float32)
    for layer, scale in enumerate(separability):
        mixing = np.eye(dim) + (0.0 if easy else 0.3) * rng.standard_normal((dim, dim)) / np.sqrt(dim)
        scale = 2.0 if easy else scale
        features[layer] = (scale * means[labels] + rng.standard_normal((labels.size, dim))) @ mixing
    bounds = np.cumsum([0, *sizes])
    return [(features[:, lo:hi], labels[lo:hi]) for lo, hi in zip(bounds[:-1], bounds[1:])]


def sklearn_test_ce(train, dev, test, l2_grid):
    """Per-layer test CE (bits) of LogisticRegression with C chosen on dev CE, on standardised float64."""
    mean, std = train[0].mean(axis=1, keepdims=True), train[0].std(axis=1, keepdims=True) + 1e-5
    train_x, dev_x, test_x = ((x - mean) / std for x in (train[0], dev[0], test[0]))
    results = []
    for layer in range(train_x.shape[0]):
        fits = [
            LogisticRegression(C=1.0 / (l2 * train[1].size), max_iter=1000).fit(train_x[layer], train[1])
            for l2 in l2_grid
        ]
        dev_ce = [log_loss(dev[1], fit.predict_proba(dev_x[layer]), labels=fit.classes_) for fit in fits]
        best = fits[int(np.argmin(dev_ce))]
        results.append(log_loss(test[1], best.predict_proba(test_x[layer]), labels=best.classes_) / np.log(2))
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=13)
    parser.add_argument("--train", type=int, default=2500)
    parser.add_argument("--eval", type=int, default=1000, help="dev and test rows each")
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--classes", type=int, default=40)
    parser.add_argument("--easy", action="store_true", help="well-conditioned classes (lbfgs converges fast)")
    args = parser.parse_args()
    print(
        f"sizes: layers={args.layers} train={args.train} dev=test={args.eval} dim={args.dim} "
        f"classes={args.classes} easy={args.easy} l2_grid={list(DEFAULT_L2_GRID)}"
    )
    sizes = (args.train, args.eval, args.eval)
    train, dev, test = synthetic_layers(args.layers, sizes, args.dim, args.classes, easy=args.easy)

    start = time.perf_counter()
    ours = probe_layers(train, test, dev=dev, progress=False)
    ours_s = time.perf_counter() - start
    start = time.perf_counter()
    reference = sklearn_test_ce(train, dev, test, DEFAULT_L2_GRID)
    sklearn_s = time.perf_counter() - start

    print(f"{'layer':>5} {'l2':>8} {'fit':>10} {'passes':>6} {'ce_probe':>9} {'ce_sklearn':>10} {'diff':>8}")
    for row, sklearn_ce in zip(ours, reference):
        print(
            f"{row['layer']:>5} {row['l2']:>8.0e} {row['fit']:>10} {row['train_passes']:>6.0f} {row['ce_bits']:>9.4f} "
            f"{sklearn_ce:>10.4f} {row['ce_bits'] - sklearn_ce:>+8.4f}"
        )
    worst = max(row["ce_bits"] - ce for row, ce in zip(ours, reference))
    print(
        f"probe_layers {ours_s:.1f} s, sklearn {sklearn_s:.1f} s, speed-up x{sklearn_s / ours_s:.1f}, "
        f"worst CE excess {worst:+.4f} bit"
    )


if __name__ == "__main__":
    main()
