"""The ``rockpool-xylo`` vendor view (``hwsnn export --format rockpool-xylo``): the keyword arguments
of Rockpool's ``XyloSim.from_specification`` for the bundle's Xylo variant, written into the bundle
(covered by its digest):

* ``rockpool_xylo/spec.npz``: every array argument (``weights_in``, ``weights_rec``, ``weights_out``,
  ``dash_*``, ``threshold*``, ``bias*``) and ``aliases`` as ``[N]`` int64 (``-1``: none);
* ``rockpool_xylo/spec.json``: the scalars (``weight_shift_in/_rec/_out``, ``dt``), the variant
  (``syns61201``, ``syns65302``, ``syns63300``) and the file's layout.

Reading it back: :func:`load_rockpool_xylo` (``np.load(allow_pickle=False)``) returns the keyword
arguments, ``aliases`` as Rockpool's list of lists. Building this view needs no Rockpool.
"""

from __future__ import annotations

import io
import json
import os
from typing import Any, Optional, Union

import numpy as np

from targets.bundle import Bundle, load_bundle

from ..views import register_view
from .rockpool import resolve_variant, to_rockpool_xylo

__all__ = ["make", "load_rockpool_xylo", "VIEW", "NPZ", "JSON"]

VIEW = "rockpool-xylo"
NPZ = "rockpool_xylo/spec.npz"
JSON = "rockpool_xylo/spec.json"


@register_view(VIEW, "Rockpool XyloSim.from_specification arguments (.npz arrays + .json scalars) of the xylo_core op")
def make(bundle: Bundle, variant: Optional[str] = None) -> dict[str, bytes]:
    """The view's files for ``bundle`` (``variant``: default the bundle's Xylo target)."""
    kw = to_rockpool_xylo(bundle, variant)
    n = len(kw["aliases"])
    aliases = np.array([a[0] if a else -1 for a in kw["aliases"]], np.int64).reshape(n)
    arrays = {k: np.asarray(v) for k, v in kw.items() if isinstance(v, np.ndarray)}
    arrays["aliases"] = aliases
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    var = resolve_variant(variant, bundle.target.name)
    scalars = {k: v for k, v in kw.items() if not isinstance(v, (np.ndarray, list))}
    meta = {"format": VIEW, "variant": var, "scalars": scalars, "arrays": sorted(arrays),
            "aliases": "[N] int64, -1 for none (Rockpool: a list of lists, [a] or [])",
            "use": f"rockpool.devices.xylo.{var}.XyloSim.from_specification(**load_rockpool_xylo(bundle_dir))"}
    return {NPZ: buf.getvalue(), JSON: (json.dumps(meta, indent=1, sort_keys=True) + "\n").encode()}


def load_rockpool_xylo(export: Union[str, "os.PathLike[str]", Bundle]) -> dict[str, Any]:
    """The keyword arguments stored by the ``rockpool-xylo`` view of a (verified) bundle.

    :raises ValueError: the bundle has no such view (``hwsnn export --format rockpool-xylo`` or
        ``quant.views.add_view(path, "rockpool-xylo")`` writes it)
    """
    bundle = export if isinstance(export, Bundle) else load_bundle(export)
    if VIEW not in (bundle.manifest.get("views") or {}):
        raise ValueError(f"{bundle.path}: no {VIEW!r} view; write it with quant.views.add_view(path, {VIEW!r})")
    meta = json.loads(bundle.member(JSON).decode())
    with np.load(io.BytesIO(bundle.member(NPZ)), allow_pickle=False) as z:
        kw: dict[str, Any] = {k: z[k] for k in z.files}
    kw["aliases"] = [[int(a)] if a >= 0 else [] for a in kw["aliases"]]
    kw.update(meta["scalars"])
    return kw
