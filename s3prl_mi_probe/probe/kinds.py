"""The probe kinds of a probe bank (linear, MLPs) and how to build one; ``finetune`` is the kind outside the bank."""

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from s3prl_mi_probe.probe.bank_kernels import AutogradKernel, LinearKernel
from s3prl_mi_probe.probe.linear import LayerwiseLinearProbe
from s3prl_mi_probe.probe.mlp import LayerwiseMLPProbe

DEFAULT_HIDDEN_DIM = 256
FINETUNE = "finetune"  # trains copies of the upstream's upper layers: see s3prl_mi_probe.finetune


@dataclass(frozen=True)
class ProbeKind:
    """A kind of probe bank.

    ``build(num_probes, input_dim, num_classes, hidden_dim=..., seed=...)`` makes the bank,
    ``penalized`` names the parameters the L2 term covers, ``convex`` says whether the train objective
    is convex, so that polishing to its optimum (the "converged" fit) is meaningful, and
    ``kernel(bank, num_candidates)`` computes its losses and gradients in training
    (:mod:`s3prl_mi_probe.probe.bank_kernels`).
    """

    build: Callable
    penalized: tuple
    convex: bool
    kernel: Callable


def _linear_bank(num_probes, input_dim, num_classes, hidden_dim=DEFAULT_HIDDEN_DIM, seed=0):
    """A :class:`LayerwiseLinearProbe` bank; it has no hidden layer and starts at zero, so ignores both options."""
    return LayerwiseLinearProbe(num_probes, input_dim, num_classes)


def _mlp_kind(depth):
    """MLP probes with ``depth`` hidden layers; L2 covers every weight matrix."""
    hidden_weights = tuple(f"hidden_weights.{layer}" for layer in range(depth))
    return ProbeKind(
        build=partial(LayerwiseMLPProbe, depth=depth),
        penalized=(*hidden_weights, "weight"),
        convex=False,
        kernel=AutogradKernel,
    )


PROBE_KINDS = {
    "linear": ProbeKind(build=_linear_bank, penalized=("weight",), convex=True, kernel=LinearKernel),
    "mlp1": _mlp_kind(1),
    "mlp2": _mlp_kind(2),
}


def probe_kind(name):
    """The :class:`ProbeKind` called ``name``; ValueError naming the supported kinds otherwise."""
    if name not in PROBE_KINDS:
        raise ValueError(f"unsupported probe {name!r}; supported: {', '.join(PROBE_KINDS)}")
    return PROBE_KINDS[name]


def build_probe_bank(kind_name, num_probes, input_dim, num_classes, hidden_dim=DEFAULT_HIDDEN_DIM, seed=0):
    """A bank of ``num_probes`` independent probes of kind ``kind_name`` (a key of ``PROBE_KINDS``).

    It maps features ``[P, N, input_dim]`` to logits ``[P, N, num_classes]``. ``hidden_dim`` is the
    width of MLP probes and ``seed`` draws their hidden weights; linear banks start at zero.
    """
    return probe_kind(kind_name).build(num_probes, input_dim, num_classes, hidden_dim=hidden_dim, seed=seed)


def known_probe_kinds():
    """Every probe kind a sweep accepts: the bank kinds and ``finetune``."""
    return (*PROBE_KINDS, FINETUNE)
