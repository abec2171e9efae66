"""How a probe bank computes its cross-entropies and gradients: closed form for linear probes, autograd for MLPs.

A bank holds K candidate probes (one per L2 strength) for each of L layers. Its parameters are kept in
a *kernel layout* whose leading dimension is the layer, so that the probes of the layers still
training are one index away (``value[layers]``); per-probe quantities (learning rates, L2 strengths,
dev cross-entropies) are ``[L, K]`` tensors. :meth:`expand` broadcasts such a tensor against a
parameter, :meth:`probe_sums` sums a parameter-shaped tensor back to ``[L, K]``, and :meth:`take_candidates` /
:meth:`put_candidates` gather and scatter some candidates of each layer along the probe axis.

The linear kernel needs no autograd: with logits ``Z = X W + b`` for features ``X [B, D]`` and the K
probes of a layer side by side in ``W [D, K·C]``, the gradient of the summed softmax cross-entropy is
``Xᵀ (softmax(Z) − onehot(y))`` and ``Σ_rows (softmax(Z) − onehot(y))`` for the bias: two GEMMs per
batch for all the layer's probes, batched over layers (``bmm``), and no per-batch re-binding.
"""

import torch
import torch.nn.functional as F
from torch.func import functional_call

TINY = torch.finfo(torch.float32).tiny


class BankKernel:
    """What both kernels share: the probe axis of each parameter and the per-probe broadcasts."""

    probe_axes = {}

    def expand(self, name, per_probe):
        """``per_probe [L, K]`` viewed to broadcast against the parameter ``name`` in the kernel layout."""
        shape = [1] * self.ndims[name]
        shape[0], shape[self.probe_axes[name]] = per_probe.shape
        return per_probe.reshape(shape)

    def probe_sums(self, name, tensor, reduce=torch.sum):
        """``tensor`` (shaped like parameter ``name``) reduced per probe: ``[L, K]``; ``reduce`` is ``torch.sum``
        or ``torch.amax``."""
        axis = self.probe_axes[name]
        others = [dim for dim in range(tensor.dim()) if dim not in (0, axis)]
        return reduce(tensor, others) if others else tensor

    def probe_dot(self, a, b):
        """Per probe, the inner product of the parameter dicts ``a`` and ``b`` (kernel layout): ``[L, K]``."""
        return sum(self.probe_sums(name, a[name] * b[name]) for name in a)

    def take_candidates(self, params, index):
        """``params`` cut to the candidates ``index [L, m]`` (positions along K) of each layer: K becomes m."""
        return {
            name: value.take_along_dim(self.expand(name, index), self.probe_axes[name])
            for name, value in params.items()
        }

    def put_candidates(self, params, index, values):
        """A copy of ``params`` with the candidates ``index [L, m]`` of each layer replaced by ``values``."""
        return {
            name: value.scatter(self.probe_axes[name], self.expand(name, index).expand_as(values[name]), values[name])
            for name, value in params.items()
        }


class LinearKernel(BankKernel):
    """Softmax regression for K probes per layer: ``weight [L, D, K, C]``, ``bias [L, K, C]``; no autograd.

    Built like the other kernels from the bank it computes for (a ``LayerwiseLinearProbe``), whose
    parameters it reads through :meth:`from_bank` and writes back through :meth:`to_bank`.
    """

    def __init__(self, bank, num_candidates):
        self.num_candidates = num_candidates
        self.probe_axes = {"weight": 2, "bias": 1}
        self.ndims = {"weight": 4, "bias": 3}

    def from_bank(self, state):
        """Kernel-layout parameters from a linear bank's ``{weight [L·K, D, C], bias [L·K, C]}``."""
        weight, bias = state["weight"], state["bias"]
        num_probes, dim, num_classes = weight.shape
        layers = num_probes // self.num_candidates
        return {
            "weight": weight.reshape(layers, self.num_candidates, dim, num_classes).permute(0, 2, 1, 3).contiguous(),
            "bias": bias.reshape(layers, self.num_candidates, num_classes).clone(),
        }

    def to_bank(self, params):
        """The bank's ``{weight [L·K, D, C], bias [L·K, C]}`` from kernel-layout parameters."""
        weight, bias = params["weight"], params["bias"]
        layers, dim, candidates, num_classes = weight.shape
        return {
            "weight": weight.permute(0, 2, 1, 3).reshape(layers * candidates, dim, num_classes),
            "bias": bias.reshape(layers * candidates, num_classes),
        }

    def logits(self, params, features):
        """Logits ``[L, B, K, C]`` of features ``[L, B, D]``: one batched GEMM for every probe of every layer."""
        weight, bias = params["weight"], params["bias"]
        layers, dim, candidates, num_classes = weight.shape
        flat = torch.baddbmm(
            bias.reshape(layers, 1, candidates * num_classes), features, weight.reshape(layers, dim, -1)
        )
        return flat.view(layers, -1, candidates, num_classes)

    def losses(self, params, features, labels):
        """Summed cross-entropy (nats) ``[L, K]`` of every probe on ``(features [L, B, D], labels [B])``."""
        log_probs = self.logits(params, features).log_softmax(-1)
        return -_picked(log_probs, labels).sum(1)

    def gradients(self, params, features, labels, with_losses=False):
        """Gradients of the summed cross-entropy, in the kernel layout (and the summed losses ``[L, K]``)."""
        residual = self.logits(params, features).softmax(-1)
        # Summed from the probabilities of the labels, floored where float32 underflows (the polish's
        # stopping test reads these; reported cross-entropies come from ``losses``, in log space).
        losses = -_picked(residual, labels).clamp_min(TINY).log_().sum(1) if with_losses else None
        index = _label_index(residual, labels)
        residual.scatter_add_(3, index, residual.new_full((1,), -1.0).expand(index.shape))
        layers, rows, candidates, num_classes = residual.shape
        weight_grad = torch.bmm(features.transpose(1, 2), residual.view(layers, rows, -1))
        grads = {
            "weight": weight_grad.view(layers, -1, candidates, num_classes),
            "bias": residual.sum(1),
        }
        return grads, losses


class AutogradKernel(BankKernel):
    """Any probe bank module (MLPs): parameters ``[L, K, ...]``, losses through the module, gradients by autograd."""

    def __init__(self, bank, num_candidates):
        self.bank, self.num_candidates = bank, num_candidates
        names = [name for name, _ in bank.named_parameters()]
        self.probe_axes = dict.fromkeys(names, 1)
        self.ndims = {name: value.dim() + 1 for name, value in bank.named_parameters()}

    def from_bank(self, state):
        """Kernel-layout parameters ``[L, K, ...]`` from the bank's ``[L·K, ...]``."""
        return {name: value.reshape(-1, self.num_candidates, *value.shape[1:]).clone() for name, value in state.items()}

    def to_bank(self, params):
        """The bank's parameters ``[L·K, ...]``."""
        return {name: value.reshape(-1, *value.shape[2:]) for name, value in params.items()}

    def _losses(self, params, features, labels):
        layers, rows, dim = features.shape
        candidates = next(iter(params.values())).shape[1]
        expanded = features.unsqueeze(1).expand(layers, candidates, rows, dim).reshape(layers * candidates, rows, dim)
        logits = functional_call(self.bank, self.to_bank(params), (expanded,))
        losses = F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), labels.repeat(layers * candidates), reduction="none"
        )
        return losses.view(layers, candidates, rows).sum(2)

    def losses(self, params, features, labels):
        """Summed cross-entropy (nats) ``[L, K]`` of every probe on ``(features [L, B, D], labels [B])``."""
        with torch.no_grad():
            return self._losses(params, features, labels)

    def gradients(self, params, features, labels, with_losses=False):
        """Gradients of the summed cross-entropy (autograd), in the kernel layout (and the summed losses)."""
        with torch.enable_grad():
            live = {name: value.detach().requires_grad_() for name, value in params.items()}
            losses = self._losses(live, features, labels)
            grads = torch.autograd.grad(losses.sum(), list(live.values()))
        return dict(zip(live, grads)), losses.detach() if with_losses else None


def _label_index(scores, labels):
    """``labels [B]`` as a gather/scatter index for ``scores [L, B, K, C]``: ``[L, B, K, 1]``."""
    layers, rows, candidates, _ = scores.shape
    return labels.view(1, rows, 1, 1).expand(layers, rows, candidates, 1)


def _picked(scores, labels):
    """``scores [L, B, K, C]`` at each row's label: ``[L, B, K]``."""
    return scores.gather(3, _label_index(scores, labels)).squeeze(3)
