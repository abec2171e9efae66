"""Which probes and analyses the probe stage runs, and within what memory."""

from dataclasses import dataclass

from s3prl_mi_probe.analyses.sampling import HARD_MARGIN_ROWS
from s3prl_mi_probe.common.device import check_device
from s3prl_mi_probe.probe.kinds import DEFAULT_MLP_WIDTH, PROBE_KINDS
from s3prl_mi_probe.probe.memory import DEFAULT_MEMORY_BUDGET
from s3prl_mi_probe.probe.stopping import DEFAULT_TOL_BITS


@dataclass(frozen=True)
class ProbeSettings:
    """Which probes and analyses run on a features folder, and within what memory.

    ``probes`` are probe kinds; ``mlp_width`` the MLP width; ``control`` a control key (``segment``
    or, on a features folder, a rows.tsv column) or None; ``seeds`` how many seeds each probe is trained
    with; ``mdl`` and ``hard_margin`` switch those analyses on, the latter on at most
    ``hard_margin_rows`` train rows; ``memory_budget`` (bytes above the process's baseline, per
    process) bounds what a fit holds; ``tol_bits`` is the dev gain that counts as progress in training;
    ``max_train_segments`` and ``max_per_class`` cut train to a seeded, class-stratified subsample (dev
    and test untouched).
    """

    device: str = "cpu"
    probes: tuple = ("linear",)
    mlp_width: int = DEFAULT_MLP_WIDTH
    control: str | None = None
    seeds: int = 1
    mdl: bool = False
    hard_margin: bool = False
    hard_margin_rows: int = HARD_MARGIN_ROWS
    memory_budget: int = DEFAULT_MEMORY_BUDGET
    tol_bits: float = DEFAULT_TOL_BITS
    max_train_segments: int | None = None
    max_per_class: int | None = None
    seed: int = 0

    def __post_init__(self):
        known = self.probe_kinds()
        unknown = [probe for probe in self.probes if probe not in known]
        if unknown or not self.probes:
            named = ", ".join(map(repr, unknown)) or "none"
            raise ValueError(f"unknown probe kind(s) {named}; choose among {', '.join(known)}")
        if self.seeds < 1:
            raise ValueError(f"seeds must be at least 1, got {self.seeds}")
        limits = {
            "max_train_segments": self.max_train_segments,
            "max_per_class": self.max_per_class,
            "hard_margin_rows": self.hard_margin_rows,
        }
        bad = [f"{name}={value}" for name, value in limits.items() if value is not None and value < 1]
        if bad:
            raise ValueError(f"{', '.join(bad)}: must be at least 1")
        if self.memory_budget <= 0:
            raise ValueError(f"memory budget must be positive, got {self.memory_budget}")
        check_device(self.device)
        object.__setattr__(self, "probes", tuple(dict.fromkeys(self.probes)))

    @staticmethod
    def probe_kinds():
        """The probe kinds these settings accept (those trained on features)."""
        return tuple(PROBE_KINDS)

    def seed_range(self):
        return range(self.seed, self.seed + self.seeds)
