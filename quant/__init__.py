"""Quantization side of hwsnn: QAT with Brevitas, conversion to integer twins, export.

>>> import quant
>>> cal = quant.calibrate(float_net, "xylo", x_train)              # doctest: +SKIP
>>> qat = quant.prepare(float_net, "xylo", state_exponents=cal.state_exponents)  # doctest: +SKIP
>>> twin = quant.convert(qat.eval(), "xylo")          # the integers QAT used  # doctest: +SKIP
>>> path = quant.export(twin, "out/export")           # doctest: +SKIP
>>> bundle = quant.load_export(path)                  # verified tables

See ``docs/EXPORT_FORMAT.md`` for the directory format.
"""

from .export import Export, ExportError, describe_layer, export, layer_names, load_export, network_spec, twin_layers
from .calibrate import Calibration, calibrate
from .convert import conversion_table, convert, format_conversion_table
from .prepare import QATNetwork, prepare
from .twin import load_twin
from .netx import NetxFormatError, from_netx, to_netx
from .xylo import from_rockpool_xylo, to_rockpool_xylo

__all__ = ["prepare", "calibrate", "convert", "conversion_table", "format_conversion_table", "QATNetwork", "Calibration", "export", "load_export", "load_twin", "describe_layer", "twin_layers", "layer_names", "network_spec", "Export", "ExportError", "to_netx", "from_netx", "NetxFormatError",
           "to_rockpool_xylo", "from_rockpool_xylo"]
