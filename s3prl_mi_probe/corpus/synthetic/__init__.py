"""Corpora made here, with exact alignments and no download: espeak-ng speech (``synth``)."""
