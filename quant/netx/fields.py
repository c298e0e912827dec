r"""The fields of netx layers, both ways (shared by :mod:`.write`, :mod:`.read` and :mod:`.conv`).

Writing: :func:`neuron_params` (a neuron op as netx's CUBA ``neuron`` group and its bias in 64ths),
:func:`scaled_weights` (a synaptic op's weights as the file's integers :math:`W\,2^{s_w}`).
Reading: :func:`text`, :func:`integers`, :func:`scalar`, :func:`neuron_fields` (``(du, dv, vth)``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .h5 import NetxFormatError

__all__ = ["BIAS_EXP", "neuron_params", "scaled_weights", "text", "integers", "scalar", "neuron_fields"]

BIAS_EXP = 6  # netx: bias_mant = bias, bias_exp = 6


def neuron_params(op: Any, where: str) -> tuple[dict, np.ndarray]:
    """``(neuron group, bias [n] in 64ths)`` of a neuron op (:mod:`.write`)."""
    if op.reset != "zero" or op.max_spikes != 1:
        raise NetxFormatError(f"{where}: params.reset {op.reset!r} with {op.max_spikes} spikes per step; Lava's LIF "
                              "resets to zero and fires once")
    if op.kind == "cuba":
        i_decay, v_decay = int(op.decay_syn) + 1, int(op.decay_mem)
    elif op.kind == "lif":
        if op.decay_input:
            raise NetxFormatError(f"{where}: params.decay_input is true; Lava's LIF has no decayed-input form")
        i_decay, v_decay = 4096, int(op.decay_mem)
    else:
        i_decay, v_decay = 4096, 0
    bias = np.broadcast_to(np.asarray(op.bias, dtype=np.int64), op.output_shape)
    per = op.bias_exp_per_neuron
    e = np.broadcast_to(np.asarray(op.bias_exp if per is None else per, dtype=np.int64), op.output_shape)
    value = np.where(e >= 0, bias << np.maximum(e, 0), bias >> np.maximum(-e, 0))  # B = m << e (floor >> for e < 0)
    if np.any(value % (1 << BIAS_EXP)):
        raise NetxFormatError(f"{where}: tables.bias: the bias B = mant << bias_exp holds values that are not multiples "
                              f"of 64; netx applies bias_exp = {BIAS_EXP} to every neuron")
    mant = value >> BIAS_EXP
    if mant.size and (int(mant.min()) < -(1 << 12) or int(mant.max()) > (1 << 12) - 1):
        raise NetxFormatError(f"{where}: tables.bias: B / 64 in [{int(mant.min())}, {int(mant.max())}] does not fit "
                              "Lava's 13-bit bias mantissa")
    group = {"type": "CUBA", "iDecay": i_decay, "vDecay": v_decay, "vThMant": int(op.threshold), "refDelay": 1,
             "gradedSpike": False}
    return group, mant.reshape(-1)


def scaled_weights(op: Any, where: str) -> np.ndarray:
    r""":math:`W\,2^{s_w}` of a dense or recurrent op (refused where it is not an integer or beyond 8 bits)."""
    w = np.asarray(op.weight, dtype=np.int64)
    s = int(op.weight_shift)
    if s < 0:
        if np.any(w % (1 << -s)):
            raise NetxFormatError(f"{where}: params.weight_shift {s} floors each step's sum; netx's weight exponent only "
                                  "undoes its own scaling, so the sums cannot be written as integer weights")
        return w >> -s
    f = w << s
    if s > 0 and f.size and (int(f.max()) > 255 or int(f.min()) < -256):
        raise NetxFormatError(f"{where}: params.weight_shift {s}: netx has no positive weight exponent, so the file "
                              f"holds W * 2^{s}, here in [{int(f.min())}, {int(f.max())}], beyond the 8-bit weights")
    return f


# -- field readers --------------------------------------------------------------------------------------
def text(value: Any, where: str) -> str:
    v = np.asarray(value)
    if v.shape not in ((), (1,)):
        raise NetxFormatError(f"{where}: expected one string; got shape {list(v.shape)}")
    v = v.reshape(())[()]
    if isinstance(v, bytes):
        return v.decode("ascii", "replace").strip("\x00")
    if isinstance(v, str):
        return v
    raise NetxFormatError(f"{where}: expected a string; got {type(v).__name__}")


def integers(value: Any, where: str, truncate: bool = False) -> np.ndarray:
    """An array of integer values (``truncate``: toward zero, as netx's ``astype(int)``)."""
    a = np.asarray(value)
    if a.dtype.kind not in "biuf":
        raise NetxFormatError(f"{where}: expected numbers; got dtype {a.dtype}")
    if a.dtype.kind == "f":
        if not np.isfinite(a).all():
            raise NetxFormatError(f"{where}: holds a non-finite value")
        if not truncate and np.any(a != np.trunc(a)):
            raise NetxFormatError(f"{where}: holds non-integer values (slayer writes integers; quantize first)")
        a = np.trunc(a)
    return a.astype(np.int64)


def scalar(group: dict, key: str, where: str) -> int:
    if key not in group:
        raise NetxFormatError(f"{where}/{key}: missing")
    a = integers(group[key], f"{where}/{key}")
    if a.size != 1:
        raise NetxFormatError(f"{where}/{key}: expected one integer; got shape {list(a.shape)}")
    return int(a.reshape(()))


def neuron_fields(group: Any, where: str) -> tuple[int, int, int]:
    """``(du, dv, vth)`` of a ``neuron`` group."""
    if not isinstance(group, dict):
        raise NetxFormatError(f"{where}: expected a group")
    if "type" not in group:
        raise NetxFormatError(f"{where}/type: missing")
    kind = text(group["type"], f"{where}/type")
    if kind not in ("CUBA", "LOIHI"):
        raise NetxFormatError(f"{where}/type: {kind!r}; hwsnn imports CUBA (Loihi LIF) neurons only")
    if "messageBits" in group and scalar(group, "messageBits", where) != 0:
        raise NetxFormatError(f"{where}/messageBits: graded spikes are not supported by hwsnn's loihi target")
    i_decay, v_decay = scalar(group, "iDecay", where), scalar(group, "vDecay", where)
    for key, v in (("iDecay", i_decay), ("vDecay", v_decay)):
        if not 0 <= v <= 4096:
            raise NetxFormatError(f"{where}/{key}: {v} is outside [0, 4096]")
    return i_decay - 1, v_decay, scalar(group, "vThMant", where)


