r"""What a NIR graph does not say, made explicit: ``dt``, the input scaling, the reset, the metadata.

NIR describes neurons in continuous time; a framework that exchanges graphs discretises them with
forward Euler at a time step ``dt`` that **is not part of the graph**. hwsnn never guesses it: it
comes from the ``dt=`` argument, from hwsnn's own metadata in the graph, or from the documented
choice of the framework named by ``source=``:

=============  ======  =================================================================================
source         dt      how its graphs are read
=============  ======  =================================================================================
``nir``        given   the NIR equations, forward Euler at ``dt``; the reset at the spike, its kind from
                       the NIR version that wrote the file (< 1.0.6: subtract, >= 1.0.6: to ``v_reset``)
``spikingjelly`` 1e-4  as ``nir``; SpikingJelly writes hard resets only (its exporter refuses soft ones)
``snntorch``   1e-4    snnTorch's own modules: :math:`\beta = 1 - dt/\tau`, the reset decided by the previous
                       step's membrane and applied in this one (``reset_delay=True``), fire on ``>``; its
                       exporter writes ``v_reset = 0`` for both of its resets, so ``reset=`` must be given
``norse``      1e-3    as ``nir`` with ``r`` ignored (Norse reads every input gain as :math:`dt/\tau`)
``hwsnn``      in file written by :func:`hwsnn.nir.export_to_nir`: ``dt``, each neuron's reset and (twins) the
                       integers are in the metadata (chosen automatically when present)
=============  ======  =================================================================================

Forward Euler of :math:`\tau \dot v = (v_{leak} - v) + R\,I` at ``dt`` is
:math:`v \leftarrow v - (v - v_{leak})/\tau_s + g\,I` with :math:`\tau_s = \tau/dt` steps and input
gain :math:`g = R\,dt/\tau`; hwsnn's ``LIFNode(tau=tau_s, decay_input=False)`` is :math:`g = 1`
(:math:`R = \tau/dt`, snnTorch's and SpikingJelly's ``r``) and ``decay_input=True`` is
:math:`g = 1/\tau_s` (:math:`R = 1`). A CUBA current :math:`\tau_{syn}\dot I = -I + w_{in} S` gives
:math:`I \leftarrow I - I/\tau_{syn,s} + (w_{in} dt/\tau_{syn}) S`, and the membrane takes this step's
current (the order of snnTorch, SpikingJelly, hwsnn and Loihi). An IF neuron :math:`\dot v = R I`
has gain :math:`R\,dt`. A shift-based time constant :math:`\tau = 2^k` is exactly
:math:`\tau = dt\,2^k` (:math:`x \leftarrow x - x/2^k`, the chips' ``x - (x >> k)``).

Numbers written as float32 carry about 7 digits: :func:`snap` takes a ratio within a relative
:data:`SNAP_RTOL` of an integer as that integer (``tau/dt = 3.9999998 -> 4``, a gain
``0.99999994 -> 1``), so that the power-of-two time constants of chips and the ``r = tau/dt`` of
snnTorch/SpikingJelly survive a float32 round trip exactly. Other values are kept as they are.

Fire: hwsnn's neurons (SpikingJelly's) spike on :math:`v \ge v_{th}`; NIR and snnTorch document
:math:`v > v_{th}`; on a chip the target's ``compare`` decides. For real-valued inputs the two
differ only on exact equality. States start at ``v_reset`` (hard reset) or 0.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Mapping, Optional

import numpy as np

__all__ = ["Source", "SOURCES", "RESETS", "SNAP_RTOL", "NIRError", "require_nir", "snap", "check_dt",
           "reset_for_version", "META_KEY", "TABLES_KEY", "FORMAT", "dump_meta", "load_meta", "EXTRA"]

#: the optional dependency group that installs NIR
EXTRA = 'pip install "hwsnn[nir]"  (nir, nirtorch)'

#: the reset kinds: ``zero`` (to v_reset, NIR >= 1.0.6), ``subtract`` (v -= v_threshold, NIR 1.0.4)
RESETS = ("zero", "subtract")

#: relative distance to an integer under which a ratio (tau/dt, a gain) is that integer
SNAP_RTOL = 1e-6

#: key of hwsnn's entry in a graph's or node's ``metadata`` (a JSON string)
META_KEY = "hwsnn"
#: key of a twin node's integer tables in its ``metadata`` (role -> int64 array)
TABLES_KEY = "hwsnn_tables"
#: version of hwsnn's metadata layout
FORMAT = 1


class NIRError(ValueError):
    """A graph, node or convention hwsnn cannot honour; the message names the node."""

    def __init__(self, message: str, node: Optional[str] = None) -> None:
        super().__init__(message)
        self.node = node


def require_nir():
    """The ``nir`` module, or an ``ImportError`` naming the extra to install."""
    try:
        import nir
    except ImportError as err:  # pragma: no cover - exercised where nir is missing
        raise ImportError(f"hwsnn.nir needs the NIR packages: {EXTRA}") from err
    return nir


@dataclass(frozen=True)
class Source:
    """How the graphs of one framework are read (module docstring)."""

    name: str
    dt: Optional[float]
    reads_r: bool
    reset_timing: str
    reset: Optional[str]
    description: str


SOURCES: dict[str, Source] = {s.name: s for s in (
    Source("nir", None, True, "spike", "version", "the NIR equations at the given dt; reset kind from the NIR version"),
    Source("spikingjelly", 1e-4, True, "spike", "zero", "SpikingJelly 2.0's export_to_nir (dt 1e-4, hard resets)"),
    Source("snntorch", 1e-4, True, "next_step", None, "snnTorch's modules (dt 1e-4, reset_delay=True, fire on >)"),
    Source("norse", 1e-3, False, "spike", "zero", "Norse (dt 1e-3, r ignored)"),
    Source("hwsnn", None, True, "spike", None, "written by hwsnn: dt and resets in the metadata"),
)}


def reset_for_version(version: Optional[str]) -> str:
    """The reset a NIR version documents: ``subtract`` before 1.0.6 (1.0.4's text), ``zero`` from 1.0.6
    (a hard reset to ``v_reset``); ``zero`` when the version is unknown or unparsable."""
    if not version:
        return "zero"
    try:
        parts = tuple(int(p) for p in str(version).split(".")[:3])
    except ValueError:
        return "zero"
    return "subtract" if parts < (1, 0, 6) else "zero"


def check_dt(dt: object, who: str = "dt") -> float:
    """``dt`` as a finite number of seconds > 0, else ``ValueError`` naming it."""
    if isinstance(dt, bool) or not isinstance(dt, (int, float, np.floating)) or not math.isfinite(dt) or dt <= 0:
        raise ValueError(f"{who}: the time step must be a finite number of seconds > 0; got {dt!r}")
    return float(dt)


def snap(values: Any, rtol: float = SNAP_RTOL) -> np.ndarray:
    """``values`` (float64) with every entry within a relative ``rtol`` of an integer replaced by it."""
    v = np.asarray(values, dtype=np.float64)
    r = np.round(v)
    close = np.abs(v - r) <= rtol * np.maximum(np.abs(v), 1.0)
    return np.where(close, r, v)


def dump_meta(data: Mapping[str, Any]) -> str:
    """hwsnn's metadata entry: canonical JSON (sorted keys) with ``format``."""
    return json.dumps({"format": FORMAT, **data}, sort_keys=True, separators=(",", ":"))


def load_meta(metadata: Any, where: str) -> Optional[dict]:
    """hwsnn's entry of a ``metadata`` mapping (``None`` when absent); a malformed entry raises
    :class:`NIRError` naming ``where`` (HDF5 hands strings back as bytes or 0-d arrays: accepted)."""
    if not isinstance(metadata, Mapping) or META_KEY not in metadata:
        return None
    raw = metadata[META_KEY]
    if isinstance(raw, np.ndarray) and raw.shape == ():
        raw = raw.item()
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    try:
        data = json.loads(raw) if isinstance(raw, str) else None
    except json.JSONDecodeError:
        data = None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise NIRError(f"{where}: metadata[{META_KEY!r}] is not hwsnn's metadata (format {FORMAT} JSON); got {raw!r:.80}")
    return data
