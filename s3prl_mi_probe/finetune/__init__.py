"""Fine-tuning from layer l (Choi et al., ICASSP 2024): frozen layers up to l, trainable copies of the
layers above plus a linear head on pooled segments; its held-out Barber–Agakov bound estimates I(Z_l; Y)."""
