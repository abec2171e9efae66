"""LayerProbes under scikit-learn's estimator contract: get_params(deep), set_params, clone, its own checks."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import ParameterGrid
from sklearn.utils import estimator_checks

from s3prl_mi_probe import LayerProbes

# scikit-learn's checks that apply to an estimator whose fit takes (X, y) pairs per layer rather than
# fit(X, y): the parameter contract. The checks that call fit(X, y) on their own data do not apply.
PARAMETER_CHECKS = (
    "check_estimator_cloneable",
    "check_estimator_repr",
    "check_no_attributes_set_in_init",
    "check_parameters_default_constructible",
    "check_get_params_invariance",
    "check_set_params",
    "check_do_not_raise_errors_in_init_or_set_params",
    "check_estimator_tags_renamed",
)


@pytest.mark.parametrize("check", PARAMETER_CHECKS)
def test_scikit_learn_parameter_checks_pass(check):
    getattr(estimator_checks, check)("LayerProbes", LayerProbes(kind="mlp1", l2_grid=(1e-3, 1e-2), seed=3))


def test_clone_copies_the_parameters_and_none_of_the_fit():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 60)
    layers = [rng.normal(size=(120, 4)) + labels[:, None] for _ in range(2)]
    probes = LayerProbes(l2_grid=(1e-3,), max_epochs=2, seed=5, progress=False).fit((layers, labels))
    copy = clone(probes)
    assert copy is not probes and copy.get_params(deep=True) == probes.get_params(deep=False)
    assert hasattr(probes, "classes_") and not any(name.endswith("_") for name in vars(copy))
    # A grid search by hand: each point a clone with its parameters set.
    grid = ParameterGrid({"kind": ["linear", "mlp1"], "mlp_width": [4]})
    fitted = [clone(probes).set_params(**point).fit((layers, labels)) for point in grid]
    assert [model.kind for model in fitted] == ["linear", "mlp1"] and probes.kind == "linear"
    assert all(len(model.evaluate((layers, labels))) == 2 for model in fitted)


def test_set_params_sets_and_refuses_unknown_names():
    probes = LayerProbes()
    assert probes.set_params(kind="mlp2", mlp_width=16) is probes
    assert (probes.kind, probes.mlp_width) == ("mlp2", 16)
    with pytest.raises(ValueError, match="no parameter hidden_width"):
        probes.set_params(hidden_width=16)
