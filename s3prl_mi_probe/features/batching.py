"""Batches of utterances for an upstream: fixed and length-sorted, so a resumed or sharded run batches alike."""


def length_sorted_batches(lengths, batch_size):
    """Index lists of ``batch_size`` items each, by ascending ``lengths`` (stable)."""
    order = sorted(range(len(lengths)), key=lambda index: lengths[index])
    return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
