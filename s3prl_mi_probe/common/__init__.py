"""What every stage uses: atomic file writes, provenance, plain-text tables, the torchrun process group."""
