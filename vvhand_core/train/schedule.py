"""A learning-rate schedule over wall-clock time: phases, warm-up and cosine.

The phased recipe splits its budget (seconds of run time) into consecutive phase slices
(:func:`phase_plan`). Within a slice, progress p runs from 0 to 1 and the learning rate
is ``peak * lr_factor(p)``: a linear warm-up from ``final_frac`` to 1 over the first
``warmup_frac`` of the slice, then a cosine from 1 down to ``final_frac`` at its end.
Because the rate is a function of run time, a resumed run (which starts from the run
time it had reached) follows the same curve as an uninterrupted one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


def lr_factor(progress: float, warmup_frac: float, final_frac: float) -> float:
    """Multiplier of the peak learning rate at ``progress`` in [0, 1] of a phase."""
    p = min(max(progress, 0.0), 1.0)
    if p < warmup_frac:
        return final_frac + (1.0 - final_frac) * p / warmup_frac
    rest = (p - warmup_frac) / (1.0 - warmup_frac)
    return final_frac + (1.0 - final_frac) * 0.5 * (1.0 + math.cos(math.pi * rest))


@dataclass(frozen=True)
class PhaseSlice:
    """One phase's slice of the run: [start_s, end_s) seconds of run time."""

    index: int
    name: str
    start_s: float
    end_s: float

    @property
    def length_s(self) -> float:
        """Seconds of the slice."""
        return self.end_s - self.start_s

    def progress(self, run_time_s: float) -> float:
        """Fraction of the slice done at ``run_time_s`` (0..1)."""
        if self.length_s <= 0:
            return 1.0
        return min(max((run_time_s - self.start_s) / self.length_s, 0.0), 1.0)


def phase_plan(shares: list[tuple[str, float]], budget_s: float) -> list[PhaseSlice]:
    """Consecutive slices of ``budget_s`` in proportion to the (name, share) pairs."""
    total = sum(s for _, s in shares)
    if total <= 0:
        raise ValueError("the phase shares must add up to more than 0")
    out, start = [], 0.0
    for i, (name, share) in enumerate(shares):
        end = budget_s if i == len(shares) - 1 else start + budget_s * share / total
        out.append(PhaseSlice(i, name, start, end))
        start = end
    return out


def slot(run_time_s: float, every_s: float) -> int:
    """Index of the ``every_s``-long interval that ``run_time_s`` lies in."""
    return int(math.floor(run_time_s / every_s + 1e-9))
