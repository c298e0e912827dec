r"""NIR (the Neuromorphic Intermediate Representation) import and export: ``pip install "hwsnn[nir]"``.

* :func:`import_from_nir` -- a NIR graph or ``.nir`` file (from snnTorch, SpikingJelly, Norse, ...) as an
  hwsnn float network (``nn.Sequential``), read with explicit conventions (:mod:`hwsnn.nir.conventions`);
* :func:`export_to_nir` -- an hwsnn float network, or an integer twin network (values dequantized,
  the integers in metadata), as a ``nir.NIRGraph`` (and a ``.nir`` file with ``path=``);
* :func:`twin_from_nir` -- the integer twin network recorded in a graph written from twins.

NIR itself is imported lazily: without the extra, using these functions raises ``ImportError``
naming it.
"""

from .conventions import EXTRA, RESETS, SOURCES, NIRError
from .delayed_reset import DelayedResetCuba, DelayedResetLIF
from .export import export_to_nir
from .import_ import ImportInfo, import_from_nir
from .modules import CubaLeakyIntegrator, LeakyIntegrator, Scale, Threshold
from .twin import twin_from_nir

__all__ = ["import_from_nir", "export_to_nir", "twin_from_nir", "ImportInfo", "NIRError", "SOURCES", "RESETS", "EXTRA",
           "Scale", "LeakyIntegrator", "CubaLeakyIntegrator", "Threshold", "DelayedResetLIF", "DelayedResetCuba"]
