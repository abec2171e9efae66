"""``--upstream`` specifications: an s3prl hub name, or ``NAME=CKPT_PATH`` for ``*_local`` entries."""

import difflib
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class UpstreamSpec:
    """An s3prl hub entry and its checkpoint (None for entries that need none or download one)."""

    name: str
    checkpoint: Path | None = None

    @classmethod
    def parse(cls, text):
        """``"hubert"`` or ``"hubert_local=/path/tiny.pt"``."""
        name, _, checkpoint = text.partition("=")
        if not name:
            raise ValueError(f"upstream spec {text!r} has no name (expected NAME or NAME=CKPT_PATH)")
        return cls(name=name.strip(), checkpoint=Path(checkpoint).expanduser() if checkpoint else None)

    @property
    def label(self):
        """How results name this upstream: ``NAME``, or ``NAME:<checkpoint file stem>``."""
        return self.name if self.checkpoint is None else f"{self.name}:{self.checkpoint.stem}"

    def load(self, device="cpu"):
        """Build the upstream exactly as s3prl's runner does, in eval mode on ``device``."""
        from s3prl import hub

        entries = [name for name in dir(hub) if not name.startswith("_")]
        if self.name not in entries:
            close = difflib.get_close_matches(self.name, entries, n=5)
            raise ValueError(f"s3prl has no upstream {self.name!r}" + (f"; did you mean {close}?" if close else ""))
        if self.checkpoint is not None and not self.checkpoint.is_file():
            raise FileNotFoundError(f"checkpoint of upstream {self.name!r} not found: {self.checkpoint}")
        checkpoint = str(self.checkpoint) if self.checkpoint is not None else None
        upstream = getattr(hub, self.name)(ckpt=checkpoint, model_config=None, refresh=False)
        return upstream.to(device).eval()
