"""hwsnn: spiking neural networks for hardware.

Float layers with the SpikingJelly ``activation_based`` API (``hwsnn.neuron``, ``hwsnn.layer``,
``hwsnn.functional``, ``hwsnn.surrogate``, ``hwsnn.base``), their integer twins per chip target
(``hwsnn.fixed``, targets in the ``targets`` package). Export, the cycle-level simulator and QAT
arrive in ``quant`` and ``sim``.
"""

from . import backend, base, functional, layer, neuron, surrogate
from . import fixed  # noqa: E402  (the integer twins: installs layer.to_fixed; float layers never import them)

__version__ = "0.6.0"

__all__ = ["backend", "base", "fixed", "functional", "layer", "neuron", "surrogate", "__version__"]
