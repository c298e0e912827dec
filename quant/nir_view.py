"""The ``nir`` view of a bundle (``hwsnn export --format nir``): ``model.nir`` beside the network.

The bundle's typed network (the exported integers) written as a NIR graph by
:func:`hwsnn.nir.twin.network_graph`: the float view with the values dequantized, the integers and
the target in the graph's metadata (so :func:`hwsnn.nir.twin_from_nir` rebuilds the exact twins),
the bundle's ``dt``. The file is listed under ``views.nir`` and covered by the bundle digest.
Importing this module needs the ``nir`` extra (without it the view is not offered).
"""

from __future__ import annotations

import io

from hwsnn.nir.conventions import require_nir
from hwsnn.nir.twin import network_graph
from targets.bundle import Bundle

from .views import register_view

require_nir()  # raises ImportError without the extra: quant.views.available_views then skips this view

__all__ = ["make_nir_view", "FILE"]

#: the view's file inside the bundle
FILE = "model.nir"


@register_view("nir", f"NIR graph {FILE}: the integer network's float view, its integers and target in the metadata")
def make_nir_view(bundle: Bundle) -> dict[str, bytes]:
    """``{"model.nir": bytes}`` of the bundle's network (``nir.write`` into memory)."""
    nir = require_nir()
    dt = float(bundle.network.dt)
    if not dt > 0 or dt == float("inf"):
        raise ValueError(f"view nir: the bundle {bundle.path} records no valid dt ({dt}); NIR time constants need one")
    graph = network_graph(bundle.network, dt)
    buf = io.BytesIO()
    nir.write(buf, graph)
    return {FILE: buf.getvalue()}
