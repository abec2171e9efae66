"""MLP probe banks: what they see that a linear probe cannot, their shapes, seeding, padding and margins."""

import numpy as np
import pytest
import torch

from s3prl_mi_probe.probe.kinds import PROBE_KINDS, build_probe_bank
from s3prl_mi_probe.probe.train import fit_layer_probes, probe_layers

FAST = {"progress": False, "l2_grid": (1e-4, 1e-2), "mlp_width": 16}


def xor_classes(rng, num_rows, noise_dims=0):
    """Two classes on the diagonal / anti-diagonal corners of a square, plus ``noise_dims`` pure-noise dimensions."""
    corners = 2.0 * np.array([[1, 1], [-1, -1], [1, -1], [-1, 1]])
    components = rng.integers(4, size=num_rows)
    features = corners[components] + 0.7 * rng.standard_normal((num_rows, 2))
    return np.hstack([features, rng.standard_normal((num_rows, noise_dims))]), components // 2


@pytest.fixture(scope="module")
def xor_split():
    """Train and test ``([narrow, wide], labels)``: the XOR layer alone, and with two noise dimensions."""
    rng = np.random.default_rng(1)
    wide, labels = xor_classes(rng, 3000, noise_dims=2)
    layers = [wide[:, :2], wide]
    return ([layer[:2000] for layer in layers], labels[:2000]), ([layer[2000:] for layer in layers], labels[2000:])


@pytest.mark.parametrize("kind", ["mlp1", "mlp2"])
def test_mlp_probes_find_the_information_a_linear_probe_misses(xor_split, kind):
    train, test = xor_split
    linear = probe_layers(train, test, **FAST)
    mlp = probe_layers(train, test, probe=kind, **FAST)
    assert all(row["mi_bits"] < 0.05 for row in linear)
    assert all(row["mi_bits"] > 0.9 and row["accuracy"] > 0.97 for row in mlp), mlp
    assert {row["probe"] for row in mlp} == {kind} and {row["fit"] for row in mlp} == {"early_stop"}
    assert all(row["margin_positive_frac"] == row["accuracy"] for row in mlp)


def test_zero_padded_input_dimensions_are_harmless(xor_split):
    train, test = xor_split
    alone = probe_layers((train[0][:1], train[1]), (test[0][:1], test[1]), probe="mlp1", **FAST)
    beside_wider = probe_layers(train, test, probe="mlp1", **FAST)
    assert abs(alone[0]["mi_bits"] - beside_wider[0]["mi_bits"]) < 0.02
    fitted = fit_layer_probes(train, probe="mlp1", **FAST).probe_
    narrow = torch.as_tensor(np.pad(test[0][0], ((0, 0), (0, 2))), dtype=torch.float32).expand(2, -1, -1)
    logits = fitted(narrow)
    with torch.no_grad():
        fitted.hidden_weights[0][:, 2:] = torch.randn(2, 2, 16)
    assert torch.equal(fitted(narrow)[0], logits[0])


@pytest.mark.parametrize(("kind", "depth"), [("mlp1", 1), ("mlp2", 2)])
def test_bank_shapes_follow_the_width_option_and_start_uniform(kind, depth):
    bank = build_probe_bank(kind, 3, 5, 4, mlp_width=8)
    wider = build_probe_bank(kind, 3, 5, 4, mlp_width=12)
    assert [tuple(weight.shape) for weight in bank.hidden_weights] == [(3, 5, 8)] + [(3, 8, 8)] * (depth - 1)
    assert [tuple(weight.shape) for weight in wider.hidden_weights] == [(3, 5, 12)] + [(3, 12, 12)] * (depth - 1)
    assert tuple(bank.weight.shape) == (3, 8, 4) and tuple(wider.weight.shape) == (3, 12, 4)
    features, labels = torch.randn(3, 7, 5), torch.randint(4, (7,))
    assert torch.equal(bank(features), torch.zeros(3, 7, 4))
    assert bank.margins(features, labels).shape == (3, 7)
    weights = {name for name, _ in bank.named_parameters() if "weight" in name}
    assert set(PROBE_KINDS[kind].penalized) == weights and not PROBE_KINDS[kind].convex


def test_a_seed_fixes_the_bank_and_the_fit(xor_split):
    first, again, other = (build_probe_bank("mlp2", 2, 3, 2, mlp_width=8, seed=seed) for seed in (0, 0, 1))
    assert all(torch.equal(a, b) for a, b in zip(first.parameters(), again.parameters()))
    assert not torch.equal(first.hidden_weights[0], other.hidden_weights[0])
    assert not torch.equal(first.hidden_weights[0][0], first.hidden_weights[0][1])
    train, test = xor_split
    fits = [probe_layers(train, test, probe="mlp1", seed=3, **FAST) for _ in range(2)]
    assert fits[0] == fits[1]


def test_margin_is_positive_exactly_where_the_probe_is_right():
    bank = build_probe_bank("mlp2", 2, 6, 5, mlp_width=10, seed=2)
    with torch.no_grad():
        bank.weight.normal_(generator=torch.Generator().manual_seed(0))
    generator = torch.Generator().manual_seed(1)
    features, labels = torch.randn(2, 500, 6, generator=generator), torch.randint(5, (500,), generator=generator)
    right = bank(features).argmax(-1) == labels
    assert 0 < right.float().mean() < 1
    assert torch.equal(bank.margins(features, labels) > 0, right)


def test_unknown_kinds_are_refused_naming_the_supported_ones():
    with pytest.raises(ValueError, match="mlp1"):
        build_probe_bank("mlp3", 2, 3, 2)
