"""hwsnn on SynSense Xylo as a whole chip: the hand-off to Rockpool both ways (:mod:`.rockpool`).

>>> kw = quant.to_rockpool_xylo("out/export", variant="syns61201")     # doctest: +SKIP
>>> twin, path = quant.from_rockpool_xylo(kw, "syns61201", out_dir="imported")  # doctest: +SKIP
"""

from .rockpool import (TARGETS, VARIANTS, XyloImport, core_of, from_rockpool_xylo, resolve_variant, rockpool_xylo,
                       to_rockpool_xylo, xylo_sim_class)
from .fuse import FuseError, fuse
from .view import load_rockpool_xylo

__all__ = ["fuse", "FuseError", "to_rockpool_xylo", "from_rockpool_xylo", "load_rockpool_xylo", "xylo_sim_class", "resolve_variant", "rockpool_xylo", "core_of", "XyloImport", "VARIANTS", "TARGETS"]
