r"""SynSense's cycle model of the Xylo core (``costs.cycle_model`` ``syns61201`` / ``syns63300``),
written from the model's description (``../shared/targets/xylo.md``; Rockpool 3.1.0,
``devices/xylo/<variant>/power_cycles_model.py``) and tested equal to Rockpool's functions.

With the activity probabilities :math:`p_{in}, p_{hid}, p_{out}` (the fraction of nonzero entries
of the input, hidden-spike and readout-spike rasters; 1 for the worst case), :math:`N_{in}` input
channels, :math:`N` hidden and :math:`M` readout neurons, :math:`F` the mean number of nonzero
synapse-1 weights out of a hidden neuron (``w_rec[:, :, 0]``), :math:`a_t, a_s` the mean alias
target / source counts per hidden neuron:

.. math::
    \begin{aligned}
    \text{input} &= N_{in}\,(3.5\,p_{in} N_{ien} + 1), &
    \text{hidISyn} &= N\,(7 F p_{hid} + 3), &
    \text{outISyn} &= N_{oen}\,p_{hid}\,(1 + 8M),\\
    \text{hidSpk} &= N\,\bigl(19 + 2\max(p_{hid}, a_t a_s) + 3\max(p_{hid} a_t, a_t a_s) + p_{hid}
                     + \max(p_{hid}, a_t)\,a_s\bigr), &
    \text{outSpk} &= 12 M
    \end{aligned}

and cycles per step = the sum. ``syns61201`` (XyloAudio 2): :math:`N_{ien} = N_{oen} = N`;
``syns63300`` (XyloIMU, XyloAudio 3): :math:`N_{ien}` = hidden neurons with a nonzero input weight,
:math:`N_{oen}` = hidden neurons with a nonzero readout weight. The clock for real time (Rockpool's
``est_clock_freq``): the worst case times :math:`(1 + \text{margin})/dt`, margin 0.2.
"""

from __future__ import annotations

from typing import Union

import numpy as np

__all__ = ["MODELS", "activity", "cycles_per_step", "clock_for_real_time"]

MODELS = ("syns61201", "syns63300")

Rate = Union[float, np.ndarray]


def activity(x: Rate) -> float:
    """A probability (a number in [0, 1]) or a raster's fraction of nonzero entries (Rockpool's rule:
    several events in one bin count once)."""
    a = np.asarray(x)
    return float(np.count_nonzero(a) / a.size) if a.size > 1 else float(a.reshape(()))


def cycles_per_step(core, model: str, input_sp: Rate = 1.0, hidden_sp: Rate = 1.0, output_sp: Rate = 1.0) -> float:
    """Mean master-clock cycles per step of the Xylo core ``core`` (a :class:`targets.bundle.XyloCore`)
    under ``model`` for the given rasters or probabilities (module docstring)."""
    if model not in MODELS:
        raise ValueError(f"cycle model must be one of {MODELS}; got {model!r}")
    p_in, p_hid = activity(input_sp), activity(hidden_sp)
    activity(output_sp)  # (the readout's spikes cost nothing extra in the model)
    w_in = np.asarray(core.w_in)[:, :, 0]
    w_rec = np.asarray(core.w_rec)[:, :, 0]
    w_out = np.asarray(core.w_out)
    nin, n, m = core.inputs, core.hidden, core.readout
    if model == "syns61201":
        nien = noen = n
    else:
        nien = int(np.count_nonzero(np.abs(w_in).sum(axis=0)))
        noen = int(np.count_nonzero(np.abs(w_out).sum(axis=1)))
    fanout = float(np.mean(np.count_nonzero(w_rec, axis=1))) if n else 0.0
    alias = np.asarray(core.alias)
    src = alias >= 0
    a_s = float(np.count_nonzero(src)) / n
    a_t = float(np.bincount(alias[src], minlength=n).sum()) / n  # mean of the target counts
    inp = nin * (p_in * nien * 3.5 + 1)
    hid_isyn = (fanout * 7 * p_hid + 3) * n
    out_isyn = p_hid * (1 + m * 8) * noen
    var = (max(p_hid, a_t * a_s) * 2.0 + max(p_hid * a_t, a_t * a_s) * 3 + p_hid + max(p_hid, a_t) * a_s)
    hid_spk = (19 + var) * n
    out_spk = 12 * m
    return float(inp + hid_isyn + out_isyn + hid_spk + out_spk)


def clock_for_real_time(core, model: str, dt: float, margin: float = 0.2) -> float:
    """The master clock (Hz) that runs ``core`` in real time in the worst case (every channel and
    neuron active every step), with ``margin``: Rockpool's ``est_clock_freq``."""
    return cycles_per_step(core, model) * (1 + margin) / dt
