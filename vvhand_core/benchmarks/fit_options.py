"""Options of `vvhand bench fit` that change the fit: term weights, FitConfig numbers, ranges.

Each parser turns one option's text into values (an argparse error for anything else);
:func:`fit_config` builds the FitConfig the bench measures from the parsed options.
"""

from __future__ import annotations

import argparse
import dataclasses

from vvhand_core.fit import FitConfig
from vvhand_core.fit.terms import Weights


def parse_weights(text: str) -> dict[str, float]:
    """'joint_mm=15, free=1' -> {"joint_mm": 15.0, "free": 1.0} (argparse error otherwise)."""
    names = {f.name for f in dataclasses.fields(Weights)}
    out = {}
    for item in filter(None, (x.strip() for x in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or key.strip() not in names:
            raise argparse.ArgumentTypeError(
                f"--weights wants name=value with names in {sorted(names)}, got {item!r}")
        try:
            out[key.strip()] = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"--weights: {item!r} is not a number") from None
    return out


def parse_range(text: str) -> tuple[float, float] | None:
    """'0.9,1.1' -> (0.9, 1.1); '' -> None (the default); argparse error unless LO <= 1 <= HI."""
    if not text.strip():
        return None
    try:
        lo, hi = (float(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"want LO,HI (two numbers), got {text!r}") from None
    if not 0 < lo <= 1 <= hi:
        raise argparse.ArgumentTypeError(f"want 0 < LO <= 1 <= HI, got {text!r}")
    return lo, hi


FIT_OPTIONS = ("gate_mm", "residual_gate_mm", "explain_mm", "explain_after", "plane_mm",
               "plane_share", "iterations", "max_points", "guard_move_mm", "guard_start_mm",
               "guard_residual_mm", "side_margin")


def parse_fit_options(text: str) -> dict[str, float]:
    """'gate_mm=40, explain_mm=0' -> {"gate_mm": 40.0, "explain_mm": 0.0} (``FIT_OPTIONS``)."""
    out = {}
    for item in filter(None, (x.strip() for x in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or key.strip() not in FIT_OPTIONS:
            raise argparse.ArgumentTypeError(
                f"--fit wants name=value with names in {FIT_OPTIONS}, got {item!r}")
        try:
            out[key.strip()] = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"--fit: {item!r} is not a number") from None
    return out


def fit_config(args: argparse.Namespace) -> FitConfig:
    """The FitConfig of the options (``--fit``: integers where FitConfig's are)."""
    extra = {} if args.finger_lengths is None else {"finger_length_range": args.finger_lengths}
    base = FitConfig()
    extra |= {k: type(getattr(base, k))(v) for k, v in getattr(args, "fit", {}).items()}
    return FitConfig(weights=Weights(**args.weights), **extra)
