"""Checking a ``--device`` before any work: a torch device this machine has."""


def check_device(device):
    """ValueError saying what to do when ``device`` is not a torch device string or this machine lacks it."""
    import torch

    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(f"device {device!r} is not a torch device ({error}); use cpu, cuda or cuda:N") from None
    if parsed.type != "cuda":
        return
    if not torch.cuda.is_available():
        raise ValueError(f"no CUDA device (asked for {device!r}); add --device cpu")
    if parsed.index is not None and parsed.index >= torch.cuda.device_count():
        raise ValueError(
            f"no CUDA device {parsed.index}: this machine has {torch.cuda.device_count()} "
            f"(cuda:0 to cuda:{torch.cuda.device_count() - 1}); pick one of those, or add --device cpu"
        )
