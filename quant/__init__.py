"""Quantization side of hwsnn: export of integer twin networks (and, next, QAT and conversion).

>>> import quant
>>> path = quant.export(twin_net, "out/export")      # doctest: +SKIP
>>> bundle = quant.load_export(path)                # verified tables

See ``docs/EXPORT_FORMAT.md`` for the directory format.
"""

from .export import Export, ExportError, describe_layer, export, load_export, twin_layers
from .convert import convert
from .twin import load_twin

__all__ = ["convert", "export", "load_export", "load_twin", "describe_layer", "twin_layers", "Export", "ExportError"]
