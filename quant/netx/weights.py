r"""What lava-dl netx and Lava make of a netx weight matrix (NumPy; written from their sources' behaviour).

netx reads a ``dense`` layer's ``weight`` with ``astype(int)`` (floats truncate toward zero) and
passes it through its ``optimize_weight_bits``; the Lava ``Dense``/``DelayDense`` process then
picks its own sign mode from the result (netx passes none), clips and truncates:

1. netx: with :math:`M = \max W`, :math:`m = \min W`: inhibitory if :math:`M < 0`, excitatory if
   :math:`m \ge 0`, else mixed (``is_signed`` 1). Scale: mixed :math:`\min(127/M, -128/m)`,
   inhibitory :math:`-256/m`, excitatory :math:`255/M`;
   :math:`b = \lfloor\log_2 \mathrm{scale}\rfloor + \mathit{is\_signed}`; :math:`n` = the largest
   :math:`n \le 8` with every :math:`W / 2^n` an integer (0 if none), minus ``is_signed``;
   ``num_weight_bits`` :math:`= 8 - b - n`, ``weight_exp`` :math:`= -b`, weights :math:`W \ll b`.
   (A mixed matrix beyond :math:`[-256, 254]` is clipped to it, with a printed warning.)
2. Lava: mode excitatory if :math:`\min \ge 0`, inhibitory if :math:`\max \le 0`, else mixed; clip
   to :math:`[0, 255]`, :math:`[-255, 0]` or :math:`[-256, 255]`; truncate
   :math:`k = 8 - \mathit{num\_weight\_bits} + [\text{mixed}]` low bits (inhibitory: of :math:`-w`).
3. The ``Dense`` (or, for a layer with ``delay``, ``DelayDense``) process shifts each step's sum by
   ``weight_exp`` (lava-dl 0.6.0 passes it to both), so it computes with exactly the file's
   integers: :math:`\lfloor (\sum (W \ll b) s) / 2^b \rfloor = \sum W s`.

:func:`netx_synapse` returns the weights Lava computes with and the shift it applies, and refuses
what netx cannot build (all-zero weights: netx divides by the largest weight; a negative scale or
truncation, where numpy's shifts are not defined). A writer checks that these weights are
exactly :math:`W \ll b` (then the sum Lava computes is the sum of the file's weights).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["NetxSynapse", "netx_weights", "netx_synapse", "netx_joint_synapses", "lava_synapse_weights", "file_integers",
           "NetxWeightError"]


class NetxWeightError(ValueError):
    """A weight matrix netx cannot turn into a Lava synapse (the message says why)."""


@dataclass(frozen=True)
class NetxSynapse:
    """A weight matrix as Lava computes with it: ``weight`` (int64), the shift of each step's sum
    (``weight_exp``), netx's ``scale_bits`` and ``num_weight_bits``, and the
    sign modes netx and Lava pick."""

    weight: np.ndarray
    weight_exp: int
    scale_bits: int
    num_weight_bits: int
    netx_mode: str
    lava_mode: str


def file_integers(values: np.ndarray) -> np.ndarray:
    """netx's ``astype(int)`` of a dataset: floats truncate toward zero (int64)."""
    a = np.asarray(values)
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        raise NetxWeightError("holds a non-finite value")
    return a.astype(np.int64)


def netx_weights(weight: np.ndarray) -> tuple[np.ndarray, int, int, str]:
    """netx's ``optimize_weight_bits`` of an integer matrix: ``(W << b, num_weight_bits, b, netx mode)``."""
    w = np.asarray(weight, dtype=np.int64)
    if w.size == 0:
        raise NetxWeightError("is empty")
    hi, lo = int(w.max()), int(w.min())
    if (hi > 254 and lo < 0) or (lo < -256 and hi > 0):  # netx clips (and prints a warning)
        w = np.clip(w, -256, 254)
        hi, lo = int(w.max()), int(w.min())
    if hi < 0:
        mode, signed, scale = "inhibitory", 0, -256 / lo
    elif lo >= 0:
        if hi == 0:
            raise NetxWeightError("is all zero: netx's weight optimisation divides by the largest weight and fails")
        mode, signed, scale = "excitatory", 0, 255 / hi
    else:
        pos = 127 / hi if hi > 0 else np.inf
        mode, signed, scale = "mixed", 1, min(pos, -128 / lo)
    b = int(np.floor(np.log2(scale))) + signed
    if b < 0:
        raise NetxWeightError(f"holds values beyond netx's range for a {mode} matrix (max {hi}, min {lo}): netx would "
                              "shift by a negative count")
    n = 8
    while n > 0 and np.sum(np.abs(w / 2.0 ** n - np.round(w / 2.0 ** n))) != 0:
        n -= 1
    n -= signed
    return w << b, 8 - b - n, b, mode


def _lava_mode(w: np.ndarray) -> str:
    if int(w.min()) >= 0:
        return "excitatory"
    return "inhibitory" if int(w.max()) <= 0 else "mixed"


def lava_synapse_weights(w: np.ndarray, num_weight_bits: int) -> tuple[np.ndarray, str]:
    """Lava's ``determine_sign_mode``, ``clip_weights`` (8 bits) and ``truncate_weights`` of integer weights."""
    mode = _lava_mode(w)
    k = 8 - num_weight_bits + (1 if mode == "mixed" else 0)
    if not 0 <= k <= 8:
        raise NetxWeightError(f"gives Lava a truncation of {k} bits ({mode} sign mode, num_weight_bits "
                              f"{num_weight_bits}), where numpy's shifts are not defined")
    if mode == "inhibitory":
        return -((np.clip(-w, 0, 255) >> k) << k), mode
    lo = -256 if mode == "mixed" else 0
    return (np.clip(w, lo, 255) >> k) << k, mode


def netx_synapse(weight: np.ndarray) -> NetxSynapse:
    """The Lava synapse netx builds from the (integer) ``weight`` of a dense layer (module docstring)."""
    scaled, nwb, b, netx_mode = netx_weights(weight)
    used, lava_mode = lava_synapse_weights(scaled, nwb)
    return NetxSynapse(used, -b, b, nwb, netx_mode, lava_mode)


def netx_joint_synapses(weight: np.ndarray, weight_rec: np.ndarray) -> tuple[NetxSynapse, NetxSynapse]:
    """A ``dense_rec`` layer: netx optimises ``[weight | weight_rec]`` together (one shift, one
    ``num_weight_bits``); Lava then picks each synapse's sign mode on its own."""
    scaled, nwb, b, netx_mode = netx_weights(np.hstack([weight, weight_rec]))
    k = weight.shape[1]
    out = []
    for part in (scaled[:, :k], scaled[:, k:]):
        used, lava_mode = lava_synapse_weights(part, nwb)
        out.append(NetxSynapse(used, -b, b, nwb, netx_mode, lava_mode))
    return out[0], out[1]
