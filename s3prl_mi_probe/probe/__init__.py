"""Stage 3, probes: one probe per layer (linear or MLP), all trained as one batched bank.

Takes feature arrays (or a cache) with labels, gives fitted probes whose held-out evaluation is
one metric row per layer. L2 and early stopping are chosen per layer on dev.
"""
