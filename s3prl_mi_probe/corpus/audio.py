"""Reading audio files as 16 kHz mono float32."""

from __future__ import annotations

from math import gcd
from pathlib import Path

import numpy as np
import soundfile
from scipy.signal import resample_poly

SAMPLE_RATE = 16000


def audio_info(path: str | Path) -> tuple[int, int]:
    """Return ``(num_samples, sample_rate)`` of an audio file without decoding it."""
    info = soundfile.info(str(path))
    return info.frames, info.samplerate


def load_audio(path: str | Path) -> np.ndarray:
    """Load an audio file as float32 mono at ``SAMPLE_RATE`` (channels mixed down, resampled)."""
    data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    mono = data.mean(axis=1)
    if rate != SAMPLE_RATE:
        common = gcd(rate, SAMPLE_RATE)
        mono = resample_poly(mono, SAMPLE_RATE // common, rate // common)
    return mono.astype(np.float32, copy=False)
