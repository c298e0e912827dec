r"""Calibration: power-of-two state exponents chosen from a few batches of data.

:func:`calibrate` runs the float network (eval mode, no gradient) on a few batches and records,
per layer, the largest magnitude each state reaches:

* neurons: the charged membrane :math:`\max|H|` (before fire/reset; it holds the threshold
  crossing), and for CUBA also the current :math:`\max|I|`; a recurrent population
  (:class:`~hwsnn.layer.RecurrentContainer`): those of its neuron, whose input includes the
  fed-back :math:`W y_{t-1} + b` (its exponent is never finer than the recurrent weight shift
  reaches, :func:`hwsnn.fixed.recurrent.finest_state_exponent`);
* synapse filters: the output :math:`\max|I|`;
* two-synapse neurons (Xylo's synapse 2): :math:`\max|H|` and the larger current
  (:mod:`quant.calibrate_syn2`).

The state exponent is the smallest :math:`e` whose grid holds the range in the state's width:

.. math::
    e = \min\{e : \mathrm{round}(R\,2^{-e}) \le 2^{b-1}-1\},\qquad
    R = \max(\max|H|,\ |V_{th}|)\cdot\text{margin}

(for CUBA the larger of the membrane's and the current's :math:`e`), coarsened while the
threshold mantissa :math:`V_{th} 2^{-(e + \text{threshold\_shift})}` does not fit the threshold
width. A synapse filter never gets a finer grid than the default
(:func:`hwsnn.fixed.synapse.default_state_exponent`), only a coarser one when the data need it:
a finer filter grid makes the next dense layer's weight shift leave the range on several chips.
:func:`quant.convert` coarsens further where a weight shift would leave the target's range.

Weight exponents come from Brevitas' max statistics at QAT time (:func:`quant.prepare`); the
calibration reports what they are for the float weights: Brevitas scales by
:math:`2^{\lceil \log_2(\max|w| / 2^{b-1}) \rceil}` and clamps to :math:`\pm(2^{b-1}-1)`, so the
largest weight may lose up to one step (counted in the twin's ``clipped['weight']``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Optional, Union

import torch
import torch.nn as nn

from hwsnn.fixed.arith import power_of_two_exponent
from hwsnn.fixed.neuron import choose_state_exponent
from hwsnn.fixed.recurrent import finest_state_exponent
from hwsnn.fixed.synapse import default_state_exponent
from hwsnn.layer import RecurrentContainer, SynapseFilter
from hwsnn.neuron import BaseNode, CubaLIFNode
from targets import Target
from targets import load as load_target

from .calibrate_syn2 import TWO_SYNAPSE_NEURONS, two_synapse_cell, two_synapse_ranges
from .convert import layer_names, quantized_weight
from .prepare import quant_layer, weight_quantizer

__all__ = ["Calibration", "calibrate", "observe_ranges", "merge_ranges", "choose_exponents"]


@dataclass
class Calibration:
    """What :func:`calibrate` observed and chose (plain data; ``rows()`` for a table)."""

    target: str
    batches: int
    #: state exponent per layer name, for ``quant.convert`` / ``quant.prepare``
    state_exponents: dict[str, int] = field(default_factory=dict)
    #: the exponent the converter would use without calibration
    default_exponents: dict[str, int] = field(default_factory=dict)
    #: largest magnitudes seen: ``{layer: {"h": .., "i": ..}}``
    observed: dict[str, dict[str, float]] = field(default_factory=dict)
    #: weight exponents of the float weights on the target's grid (Brevitas' rule)
    weight_exponents: dict[str, int] = field(default_factory=dict)

    def rows(self) -> list[dict]:
        """One row per calibrated layer: name, observed ranges, default and chosen exponents."""
        rows = []
        for name, e in self.state_exponents.items():
            rows.append(dict(layer=name, observed={k: round(v, 6) for k, v in self.observed.get(name, {}).items()},
                             default=self.default_exponents.get(name), chosen=e))
        for name, e in self.weight_exponents.items():
            rows.append(dict(layer=name, observed={}, default=None, chosen=e, what="weight"))
        return rows

    def summary(self) -> str:
        """One line per layer, e.g. ``lif1: max|H| 1.73 -> e -14 (default -13)``."""
        lines = []
        for name, e in self.state_exponents.items():
            obs = ", ".join(f"max|{k.upper()}| {v:.4g}" for k, v in self.observed.get(name, {}).items())
            lines.append(f"{name}: {obs} -> state exponent {e} (default {self.default_exponents.get(name)})")
        for name, e in self.weight_exponents.items():
            lines.append(f"{name}: weight exponent {e}")
        return "\n".join(lines)


def _threshold(m: BaseNode) -> float:
    """The threshold the state grid must hold: per-neuron thresholds (Xylo) share the grid of the largest
    (the converter refuses them on targets with one threshold per layer)."""
    vth = m.v_threshold
    if isinstance(vth, torch.Tensor):
        return float(vth.detach().abs().max())
    return float(vth)


def _neuron_ranges(m: BaseNode, x_seq: torch.Tensor,
                   recurrent: Optional[RecurrentContainer] = None) -> tuple[dict[str, float], torch.Tensor]:
    """Run ``m`` step by step from its reset state on ``x_seq``: max |H| (and |I| for CUBA), and
    the spikes (the layer's output, for the next layer); with ``recurrent`` (``m``'s container) the
    input of each step is :math:`x_t + W y_{t-1} + b`."""
    v: Union[float, torch.Tensor] = m.v_init
    i = torch.zeros_like(x_seq[0])
    h_max, i_max = 0.0, 0.0
    spikes = []
    if recurrent is not None:
        recurrent.reset()
    for t in range(x_seq.shape[0]):
        x = x_seq[t] if recurrent is None else recurrent.feedback(x_seq[t])
        if isinstance(m, CubaLIFNode):
            i = m.current_charge(x, i)
            i_max = max(i_max, float(i.abs().max()))
            x = i
        v_t = torch.full_like(x, float(v)) if not torch.is_tensor(v) else v
        h = m.neuronal_charge(x, v_t)
        h_max = max(h_max, float(h.abs().max()))
        s, v = m.step(x, v_t)
        spikes.append(s)
        if recurrent is not None:
            recurrent.y = s
    if recurrent is not None:
        recurrent.reset()
    out = {"h": h_max}
    if isinstance(m, CubaLIFNode):
        out["i"] = i_max
    return out, torch.stack(spikes)


def _recurrent_neuron(m: RecurrentContainer, name: str) -> BaseNode:
    """The spiking neuron of a recurrent population (the only sub-module with an integer twin)."""
    if not isinstance(m.sub_module, BaseNode):
        raise TypeError(f"calibrate: {name} (RecurrentContainer) wraps {type(m.sub_module).__name__}; calibration "
                        "and conversion need a spiking neuron (IFNode, LIFNode, CubaLIFNode)")
    return m.sub_module


def _exponent(m: BaseNode, tg: Target, ranges: dict[str, float], margin: float) -> int:
    vth = abs(_threshold(m))
    e = power_of_two_exponent(max(ranges["h"], vth) * margin, tg.widths.membrane)
    if "i" in ranges:
        e = max(e, power_of_two_exponent(ranges["i"] * margin, tg.widths.current))
    while round(vth * 2.0 ** -(e + tg.neuron.threshold_shift)) > tg.widths.threshold.hi:
        e += 1
    return e


def _batches(batches: Union[torch.Tensor, Iterable[torch.Tensor]], batch_size: int) -> Iterable[torch.Tensor]:
    if torch.is_tensor(batches):
        if batches.dim() < 2:
            raise ValueError(f"calibrate: inputs must be [T, N, ...]; got shape {tuple(batches.shape)}")
        return [batches[:, i : i + batch_size] for i in range(0, batches.shape[1], batch_size)]
    return batches


def observe_ranges(model: nn.Sequential, batches: Iterable[torch.Tensor], *, max_batches: int,
                   names: Optional[list[str]] = None) -> tuple[dict[str, dict[str, float]], int]:
    """The largest magnitudes of the states, per layer (``{layer: {"h": .., "i": ..}}``, module
    docstring), over at most ``max_batches`` of ``batches``, and how many batches were used (0 for
    none: no error here, so that a rank without a batch can still take part in a reduction).

    Runs ``model`` in eval mode without gradients on the device of its parameters (each batch is
    moved there); the model's mode is restored.
    """
    layers = list(model)
    names = names or layer_names(model)
    p = next(model.parameters(), None)
    observed: dict[str, dict[str, float]] = {}
    used = 0
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for x in batches:
                if used >= max_batches:
                    break
                used += 1
                h = x.to(torch.get_default_dtype()) if not x.is_floating_point() else x
                if p is not None:
                    h = h.to(p.device)
                for name, m in zip(names, layers):
                    if isinstance(m, TWO_SYNAPSE_NEURONS):  # Xylo's synapse 2 (quant.calibrate_syn2)
                        ranges, h = two_synapse_ranges(m, h, name)
                    elif isinstance(m, BaseNode):
                        ranges, h = _neuron_ranges(m, h)
                    elif isinstance(m, RecurrentContainer):
                        ranges, h = _neuron_ranges(_recurrent_neuron(m, name), h, m)
                    else:
                        if hasattr(m, "reset"):
                            m.reset()
                        h = m(h)
                        if hasattr(m, "reset"):
                            m.reset()
                        ranges = {"i": float(h.abs().max())} if isinstance(m, SynapseFilter) else {}
                    if ranges:
                        seen = observed.setdefault(name, {})
                        for k, v in ranges.items():
                            seen[k] = max(seen.get(k, 0.0), v)
    finally:
        model.train(was_training)
    return observed, used


def merge_ranges(parts: Iterable[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    """The element-wise maximum of several :func:`observe_ranges` results (e.g. one per rank):
    the ranges of all their batches together."""
    out: dict[str, dict[str, float]] = {}
    for part in parts:
        for name, ranges in part.items():
            seen = out.setdefault(name, {})
            for k, v in ranges.items():
                seen[k] = max(seen.get(k, 0.0), float(v))
    return out


def choose_exponents(model: nn.Sequential, target: Union[str, Target], observed: dict[str, dict[str, float]],
                     batches: int, *, margin: float = 1.0, names: Optional[list[str]] = None) -> Calibration:
    """The :class:`Calibration` of ``observed`` ranges (from ``batches`` batches): the state
    exponents (module docstring) and the float weights' exponents."""
    if not (math.isfinite(margin) and margin > 0):
        raise ValueError(f"calibrate: margin must be a finite number > 0; got {margin}")
    if batches == 0:
        raise ValueError("calibrate: no batches given")
    tg = load_target(target)
    layers = list(model)
    names = names or layer_names(model)
    cal = Calibration(target=tg.name, batches=batches)
    for name, m in zip(names, layers):
        if name not in observed:
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                q = m if hasattr(m, "quant_weight") else quant_layer(m, weight_quantizer(tg))
                cal.weight_exponents[name] = quantized_weight(q, tg)[1]
            continue
        cal.observed[name] = observed[name]
        if isinstance(m, TWO_SYNAPSE_NEURONS):
            cell = two_synapse_cell(m, name)
            cal.default_exponents[name] = choose_state_exponent(_threshold(cell), tg)
            cal.state_exponents[name] = _exponent(cell, tg, observed[name], margin)
        elif isinstance(m, BaseNode):
            cal.default_exponents[name] = choose_state_exponent(_threshold(m), tg)
            cal.state_exponents[name] = _exponent(m, tg, observed[name], margin)
        elif isinstance(m, RecurrentContainer):  # as its converter: no finer than the weight shift reaches
            finest = finest_state_exponent(m, tg)
            cal.default_exponents[name] = max(choose_state_exponent(_threshold(m.sub_module), tg), finest)
            cal.state_exponents[name] = max(_exponent(m.sub_module, tg, observed[name], margin), finest)
        else:
            default = default_state_exponent(tg)
            cal.default_exponents[name] = default
            cal.state_exponents[name] = max(default, power_of_two_exponent(observed[name]["i"] * margin, tg.widths.current))
    return cal


def calibrate(
    model: nn.Sequential,
    target: Union[str, Target],
    batches: Union[torch.Tensor, Iterable[torch.Tensor]],
    *,
    batch_size: int = 64,
    max_batches: int = 4,
    margin: float = 1.0,
    names: Optional[list[str]] = None,
) -> Calibration:
    """Choose state exponents from data (module docstring): :func:`observe_ranges` then
    :func:`choose_exponents` (:func:`quant.distributed.calibrate_across_ranks` reduces the ranges
    of several processes in between).

    :param model: the float :class:`torch.nn.Sequential` (multi-step); not modified, run in eval mode
    :param target: target name, YAML path or :class:`~targets.Target`
    :param batches: an input ``[T, N, ...]`` (split into ``batch_size`` samples) or an iterable of them
    :param max_batches: how many batches to use
    :param margin: factor on the observed ranges (> 1 leaves headroom for unseen data)
    :param names: layer names (default ``<class name lowercased><index>``, as :func:`quant.convert`)
    """
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"calibrate: expected an nn.Sequential of hwsnn layers; got {type(model).__name__}")
    if not (math.isfinite(margin) and margin > 0):
        raise ValueError(f"calibrate: margin must be a finite number > 0; got {margin}")
    tg = load_target(target)
    names = names or layer_names(model)
    observed, used = observe_ranges(model, _batches(batches, batch_size), max_batches=max_batches, names=names)
    return choose_exponents(model, tg, observed, used, margin=margin, names=names)
