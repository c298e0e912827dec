"""The run configuration: ``hwsnn run --config run.yaml`` on a user's own network and data.

A run file is YAML, read with ``yaml.safe_load`` only (no Python tags). Every key is optional;
an empty file is the built-in default job (``examples/run.yaml`` spells the defaults out)::

    seed: 0                  # int >= 0: data split/sampling, weight init, training order
    target: generic_int8     # a shipped target name, or a path to a target .yaml
    out: hwsnn-out           # output directory (relative to the working directory)
    data:                    # default: {kind: digits}
      kind: digits           # digits | temporal_patterns | npz | shd | nmnist
      # digits (hwsnn.data.digits_spikes; unset options take that function's defaults):
      #   row_steps (2), tail_steps (4), levels ([4, 10]), columns ([1, 7]), position_channels (4):
      #   (columns[1] - columns[0]) * len(levels) + position_channels input channels,
      #   test_fraction (0.2), train_samples, test_samples (limits; null = all)
      # temporal_patterns (hwsnn.data.temporal_patterns; test set: sample_seed = seed + 10000):
      #   T (20), channels (16), classes (10), train_samples (2000), test_samples (500),
      #   template_rate (0.2), jitter (1), drop (0.1), noise (0.02)
      # npz: path (required) to a .npz holding x_train [T, N, ...], y_train [N],
      #   x_test [T, N, ...], y_test [N] (loaded with allow_pickle=False);
      #   classes (optional: labels must lie in [0, classes))
      # shd, nmnist (hwsnn.events; tonic): path (required) to the data set's folder, read when
      #   the data is loaded (never downloaded); binning and cache options: docs/main-job.md, examples/shd_xylo.yaml
    network:                 # default (absent or null): hwsnn.demo.default_network(target)
      - {type: Linear, in_features: 16, out_features: 64, bias: false}
      - {type: LIFNode, tau: 2.0, v_reset: null, surrogate_function: {type: ATan, alpha: 2.0}}
      - {type: VotingLayer, voting_size: 4}
    training:
      epochs: 40             # int >= 1
      lr: 0.01               # number > 0
      batch_size: 32         # int >= 1
      qat_epochs: null       # int >= 0; null (default): 3, or 6 on Xylo targets (TrainingSpec.for_target)
      qat_lr: null           # number > 0; null (default): 1e-4, or 1e-3 on Xylo targets
      calibration_batches: 4 # int >= 1

Paths inside the file (``target`` when it is a path, ``data.path``, ``data.cache_dir``) are
relative to the file's folder. A layer's ``type`` is one of :data:`LAYER_TYPES` (a fixed
whitelist; no name is ever imported or evaluated); its other keys are the class's constructor arguments (checked against
its signature, lists become tuples). ``surrogate_function`` names one of :data:`SURROGATES`,
as a string or ``{type: ..., alpha: ...}``. A ``RecurrentContainer``'s ``sub_module`` is a nested
neuron entry (``{type: LIFNode, tau: 4.0, ...}``), checked the same way. ``step_mode`` is not set
here: the network runs multi-step (``[T, N, ...]``).

Validation collects every problem and raises one :class:`ConfigError` naming the file and each
key path (``network[2].type: unknown layer 'LIFnode'; known: ...``).
"""

from .errors import ConfigError
from .options import DATA_KINDS
from .parse import load_run_config, run_config_from_dict
from .run import RunConfig
from .specs import DataSpec, LayerSpec, TrainingSpec
from .whitelists import LAYER_TYPES, SURROGATES

__all__ = [
    "ConfigError",
    "DataSpec",
    "LayerSpec",
    "TrainingSpec",
    "RunConfig",
    "LAYER_TYPES",
    "SURROGATES",
    "DATA_KINDS",
    "load_run_config",
    "run_config_from_dict",
]
