"""``--upstream`` specifications: an s3prl hub name, or ``NAME=CKPT_PATH`` for ``*_local`` entries."""

import difflib
from dataclasses import dataclass
from pathlib import Path

LOCAL_SUFFIX = "_local"  # s3prl's hub entries that load a checkpoint file (``-k`` in the runner)


class UpstreamUnavailable(RuntimeError):
    """An upstream that cannot be built: its weights could not be downloaded or read."""


@dataclass(frozen=True)
class UpstreamSpec:
    """An s3prl hub entry and its checkpoint (None for entries that need none or download one)."""

    name: str
    checkpoint: Path | None = None

    @classmethod
    def parse(cls, text):
        """``"hubert"`` or ``"hubert_local=/path/tiny.pt"``; ValueError saying what is missing.

        A ``*_local`` entry needs a checkpoint, and a checkpoint given must be a file.
        """
        name, _, checkpoint = (part.strip() for part in text.partition("="))
        if not name:
            raise ValueError(f"upstream spec {text!r} has no name (expected NAME or NAME=CKPT_PATH)")
        spec = cls(name=name, checkpoint=Path(checkpoint).expanduser() if checkpoint else None)
        if name.endswith(LOCAL_SUFFIX) and spec.checkpoint is None:
            raise ValueError(f"upstream {name!r} loads a checkpoint file: give it as {name}=CKPT_PATH")
        if spec.checkpoint is not None and not spec.checkpoint.is_file():
            raise ValueError(f"checkpoint of upstream {name!r} not found: {spec.checkpoint}")
        return spec

    @property
    def label(self):
        """How results name this upstream: ``NAME``, or ``NAME:<checkpoint file stem>``."""
        return self.name if self.checkpoint is None else f"{self.name}:{self.checkpoint.stem}"

    def check_name(self):
        """ValueError naming the nearest entries when s3prl's hub has no upstream of this name.

        S3prlMissing (saying how to install it) without s3prl.
        """
        from s3prl_mi_probe.toolkit.hub import hub_names

        entries = hub_names()
        if self.name not in entries:
            close = difflib.get_close_matches(self.name, entries, n=5)
            raise ValueError(
                f"s3prl has no upstream {self.name!r}"
                + (f"; did you mean {' or '.join(close)}?" if close else "; see s3prl's hub for the names")
            )

    def load(self, device="cpu"):
        """Build the upstream exactly as s3prl's runner does, in eval mode on ``device``.

        ValueError for an unknown name or a missing checkpoint file; UpstreamUnavailable when s3prl
        cannot download or read the weights; S3prlMissing (saying how to install it) without s3prl.
        """
        from s3prl_mi_probe.toolkit.hub import load_upstream

        self.check_name()
        if self.checkpoint is not None and not self.checkpoint.is_file():
            raise ValueError(f"checkpoint of upstream {self.name!r} not found: {self.checkpoint}")
        checkpoint = str(self.checkpoint) if self.checkpoint is not None else None
        try:
            upstream = load_upstream(self.name, checkpoint)
        except OSError as error:  # requests' and urllib's errors are OSErrors too
            raise UpstreamUnavailable(self._unavailable(error)) from error
        return upstream.to(device).eval()

    def _unavailable(self, error):
        detail = " ".join(str(error).split())
        detail = detail if len(detail) <= 200 else detail[:197] + "..."
        reason = f"{type(error).__name__}: {detail}" if detail else type(error).__name__
        if self.checkpoint is not None:
            return f"upstream {self.label!r}: could not read its checkpoint ({reason})"
        return (
            f"upstream {self.name!r}: s3prl could not download its weights ({reason}); check the network, or "
            f"download the checkpoint elsewhere and give it as {self.name}{LOCAL_SUFFIX}=CKPT_PATH where s3prl has "
            f"such an entry"
        )
