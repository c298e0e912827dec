r"""Lava's sign modes in the simulator: the weights a dense layer uses (NumPy; ``lava.utils.weightutils``).

Written from ``shared/targets/loihi.md``; the twin (``hwsnn.fixed.dense``) checks the same rule on
its own. With :math:`b` the weight bits (9 on Loihi: an 8-bit magnitude and a sign) and the mixed
grid step :math:`g` (2):

1. mode: ``excitatory`` if :math:`\min W \ge 0`, ``inhibitory`` if :math:`\max W \le 0`, else ``mixed``;
2. clip (:math:`m = 2^{b-1} - 1`): excitatory :math:`[0, m]`, mixed :math:`[-(m+1), m]`, inhibitory
   :math:`-\mathrm{clip}(-W, 0, m)`;
3. truncate: drop :math:`\log_2 g` low bits in mixed mode, ``(w >> 1) << 1`` (floor), none otherwise.

:func:`lava_weights` returns the weights and the mode; the ``dense`` op refuses a table the rule
changes (the exporter writes the weights Lava uses, with their mode).
"""

from __future__ import annotations

import numpy as np

__all__ = ["lava_weights"]


def lava_weights(weight: np.ndarray, bits: int, step: int) -> tuple[np.ndarray, str]:
    """``(weights after Lava's clip and truncation, mode)`` of an integer matrix (module docstring)."""
    w = np.asarray(weight, dtype=np.int64)
    if w.size == 0 or w.min() >= 0:
        mode = "excitatory"
    elif w.max() <= 0:
        mode = "inhibitory"
    else:
        mode = "mixed"
    m = (1 << (bits - 1)) - 1
    if mode == "inhibitory":
        return -np.clip(-w, 0, m), mode
    if mode == "excitatory":
        return np.clip(w, 0, m), mode
    drop = int(step).bit_length() - 1  # a power-of-two grid: its low bits
    return (np.clip(w, -(m + 1), m) >> drop) << drop, mode
