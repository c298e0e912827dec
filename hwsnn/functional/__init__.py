"""Functional API: pure step functions and network-wide helpers (SpikingJelly ``functional`` names)."""

from .forward import multi_step_forward, seq_to_ann_forward
from .layer import delay_multi_step, delay_step, synapse_filter_step
from .misc import (
    check_delay_steps,
    delay,
    first_spike_index,
    kaiming_normal_conv_linear_weight,
    redundant_one_hot,
    set_threshold_margin,
)
from .net_config import (
    collect_reset_modules,
    detach_net,
    invalidate_reset_cache,
    reset_collected_modules,
    reset_net,
    set_step_mode,
)
from .neuron import fire, if_charge, if_step, lif_charge, lif_step, neuron_multi_step, reset, voltage_reset

__all__ = [
    "multi_step_forward",
    "seq_to_ann_forward",
    "delay_step",
    "delay_multi_step",
    "synapse_filter_step",
    "check_delay_steps",
    "delay",
    "first_spike_index",
    "kaiming_normal_conv_linear_weight",
    "redundant_one_hot",
    "set_threshold_margin",
    "detach_net",
    "reset_net",
    "set_step_mode",
    "invalidate_reset_cache",
    "collect_reset_modules",
    "reset_collected_modules",
    "fire",
    "if_charge",
    "if_step",
    "lif_charge",
    "lif_step",
    "neuron_multi_step",
    "reset",
    "voltage_reset",
]
