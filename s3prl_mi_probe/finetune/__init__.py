"""Fine-tuning from layer l (Choi et al., ICASSP 2024), the probe that needs the upstream itself.

Takes an upstream of a supported family and a TaskData, gives dev and test metric rows: frozen
layers up to l, trainable copies of the layers above plus a linear head on pooled segments, whose
held-out Barber–Agakov bound estimates I(Z_l; Y).
"""
