r"""Weight sign modes (Lava's ``SignMode``): the format's rule for the ``sign_mode`` of a weight table.

On a target with ``synapse.sign_modes`` (Loihi) a weight matrix carries one of three modes, which
Lava picks from the matrix itself when none is given (and lava-dl netx never gives one)::

    excitatory   if min(W) >= 0      weights 0 .. 2^(b-1) - 1            (b = widths.weight.bits: 0..255)
    inhibitory   elif max(W) <= 0    weights -(2^(b-1) - 1) .. 0                                (-255..0)
    mixed        otherwise           the weight width and step (Loihi: even values in [-256, 254])

Lava then clips every weight into its mode's range and drops the low bits the mode does not hold,
so a table is exported *as Lava uses it*: its recorded ``sign_mode`` must be the automatic mode of
the table, and every value must lie in that mode's range and grid (Lava leaves it unchanged).
The arithmetic that applies the modes lives in the twins and the simulator (each its own); this
module only states the rule the tables obey.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from ..target import Target

__all__ = ["SIGN_MODES", "auto_sign_mode", "sign_mode_grid", "sign_mode_problems"]

#: the sign modes a weight table may record
SIGN_MODES = ("mixed", "excitatory", "inhibitory")


def auto_sign_mode(weight: np.ndarray) -> str:
    """Lava's automatic mode of a weight matrix: ``excitatory`` if ``min >= 0`` (an empty or all-zero
    matrix too), ``inhibitory`` if ``max <= 0``, else ``mixed``."""
    w = np.asarray(weight)
    if w.size == 0 or int(w.min()) >= 0:
        return "excitatory"
    if int(w.max()) <= 0:
        return "inhibitory"
    return "mixed"


def sign_mode_grid(mode: str, target: Target) -> tuple[int, int, int]:
    """``(lo, hi, step)``: the weights ``mode`` holds unchanged on ``target`` (step 1 outside ``mixed``)."""
    width, step = target.widths.weight, int(target.synapse.weight_step)
    mag = (1 << (width.bits - 1)) - 1 if width.signed else width.hi
    if mode == "excitatory":
        return 0, mag, 1
    if mode == "inhibitory":
        return -mag, 0, 1
    if mode == "mixed":
        return width.lo, width.hi - width.hi % step, step
    raise ValueError(f"sign mode must be one of {', '.join(SIGN_MODES)}; got {mode!r}")


def sign_mode_problems(weight: Optional[np.ndarray], mode: Optional[str], target: Target, where: str) -> list[str]:
    """Problems of a weight table ``weight`` recording ``mode`` on ``target`` (empty when it obeys the rule):
    targets without sign modes record none; on the others the mode is the table's automatic one and
    every weight lies in its range and grid. ``where`` names the fields (``params.sign_mode``)."""
    if not target.synapse.sign_modes:
        return [] if mode is None else [f"{where}: {mode!r}, but the target has no sign modes (must be null)"]
    if weight is None:
        return []
    auto = auto_sign_mode(weight)
    if mode is None:
        return [f"{where}: missing; the target picks a sign mode from the weights ({auto!r} for this table)"]
    if mode != auto:
        return [f"{where}: {mode!r}, but the target picks {auto!r} from this table (min {int(weight.min())}, "
                f"max {int(weight.max())})"]
    lo, hi, step = sign_mode_grid(mode, target)
    bad = (weight < lo) | (weight > hi) | ((weight - lo) % step != 0)
    if bool(bad.any()):
        grid = f", multiples of {step}" if step > 1 else ""
        return [f"tables.weight: {int(bad.sum())} value(s) (e.g. {int(weight[bad].flat[0])}) that the {mode} sign mode "
                f"changes (it holds [{lo}, {hi}]{grid})"]
    return []
