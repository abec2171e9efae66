"""The probe kinds of a probe bank (linear, MLPs) and how to build one; ``finetune`` is the kind outside the bank.

Importing this module imports no torch (the command line reads the kinds and the MLP width from here):
the banks and kernels are imported when one is built.
"""

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

DEFAULT_MLP_WIDTH = 256  # hidden units of the MLP probes (--mlp-width, config and protocol key mlp_width)
FINETUNE = "finetune"  # trains copies of the upstream's upper layers: see s3prl_mi_probe.finetune


@dataclass(frozen=True)
class ProbeKind:
    """A kind of probe bank.

    ``build(num_probes, input_dim, num_classes, mlp_width=..., seed=...)`` makes the bank,
    ``penalized`` names the parameters the L2 term covers, ``convex`` says whether the train objective
    is convex, so that polishing to its optimum (the "converged" fit) is meaningful, and
    ``kernel(bank, num_candidates)`` computes its losses and gradients in training
    (:mod:`s3prl_mi_probe.probe.bank_kernels`).
    """

    build: Callable
    penalized: tuple
    convex: bool
    kernel: Callable


def _linear_bank(num_probes, input_dim, num_classes, mlp_width=DEFAULT_MLP_WIDTH, seed=0):
    """A :class:`LayerwiseLinearProbe` bank; it has no hidden layer and starts at zero, so ignores both options."""
    from s3prl_mi_probe.probe.linear import LayerwiseLinearProbe

    return LayerwiseLinearProbe(num_probes, input_dim, num_classes)


def _linear_kernel(bank, num_candidates):
    from s3prl_mi_probe.probe.bank_kernels import LinearKernel

    return LinearKernel(bank, num_candidates)


def _mlp_bank(num_probes, input_dim, num_classes, mlp_width=DEFAULT_MLP_WIDTH, seed=0, depth=1):
    from s3prl_mi_probe.probe.mlp import LayerwiseMLPProbe

    return LayerwiseMLPProbe(num_probes, input_dim, num_classes, mlp_width, depth, seed)


def _autograd_kernel(bank, num_candidates):
    from s3prl_mi_probe.probe.bank_kernels import AutogradKernel

    return AutogradKernel(bank, num_candidates)


def _mlp_kind(depth):
    """MLP probes with ``depth`` hidden layers; L2 covers every weight matrix."""
    hidden_weights = tuple(f"hidden_weights.{layer}" for layer in range(depth))
    return ProbeKind(
        build=partial(_mlp_bank, depth=depth),
        penalized=(*hidden_weights, "weight"),
        convex=False,
        kernel=_autograd_kernel,
    )


PROBE_KINDS = {
    "linear": ProbeKind(build=_linear_bank, penalized=("weight",), convex=True, kernel=_linear_kernel),
    "mlp1": _mlp_kind(1),
    "mlp2": _mlp_kind(2),
}


def probe_kind(name):
    """The :class:`ProbeKind` called ``name``; ValueError naming the supported kinds otherwise."""
    if name not in PROBE_KINDS:
        raise ValueError(f"unsupported probe {name!r}; supported: {', '.join(PROBE_KINDS)}")
    return PROBE_KINDS[name]


def build_probe_bank(kind_name, num_probes, input_dim, num_classes, mlp_width=DEFAULT_MLP_WIDTH, seed=0):
    """A bank of ``num_probes`` independent probes of kind ``kind_name`` (a key of ``PROBE_KINDS``).

    It maps features ``[P, N, input_dim]`` to logits ``[P, N, num_classes]``. ``mlp_width`` is the
    width of MLP probes and ``seed`` draws their hidden weights; linear banks start at zero.
    """
    return probe_kind(kind_name).build(num_probes, input_dim, num_classes, mlp_width=mlp_width, seed=seed)


def known_probe_kinds():
    """Every probe kind a sweep accepts: the bank kinds and ``finetune``."""
    return (*PROBE_KINDS, FINETUNE)
