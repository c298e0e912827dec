r""":func:`import_from_nir`: a NIR graph (or ``.nir`` file) as an hwsnn float network.

The graph must be a chain (:mod:`hwsnn.nir.graph`); each node becomes hwsnn modules
(:mod:`hwsnn.nir.nodes`) read with explicit conventions (:mod:`hwsnn.nir.conventions`): ``dt``, the
source framework, the reset. The result is an :class:`torch.nn.Sequential` in ``step_mode`` (default
``'m'``: sequences ``[T, N, ...]``) with ``layer_names`` (the node names, which name the layers of a
later export bundle) and ``nir_import`` (what was decided: dt, source, NIR version, each neuron's
reset, gains and folds).

``fold=True`` makes the network chip-ready: every :class:`~hwsnn.nir.modules.Scale` (a Scale node,
or a neuron's input gain :math:`r\,dt/\tau \ne 1`, SpikingJelly's ``decay_input=True`` included) is
multiplied into the rows of the ``Linear``/``Conv`` right before it (the same function; float
rounding may differ in the last bit), and refused, naming the node, where there is none.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import torch
import torch.nn as nn

from ..functional import set_step_mode
from .conventions import SOURCES, NIRError, check_dt, load_meta, reset_for_version
from .graph import chain_of, load_graph, sanitize
from .modules import Scale
from .nodes import Context, build_unit

__all__ = ["import_from_nir", "ImportInfo"]


@dataclass
class ImportInfo:
    """What :func:`import_from_nir` decided (``model.nir_import``)."""

    dt: float
    source: str
    nir_version: Optional[str]
    resets: dict[str, str]
    notes: list[str] = field(default_factory=list)
    graph_metadata: Optional[dict] = None

    def summary(self) -> str:
        """One line per decision."""
        lines = [f"dt {self.dt:g} s, conventions of {self.source!r}, written by NIR {self.nir_version or '(in memory)'}"]
        if self.resets:
            kinds = sorted(set(self.resets.values()))
            lines.append(f"resets: {', '.join(f'{k} ({sum(v == k for v in self.resets.values())} layer(s))' for k in kinds)}")
        lines += self.notes
        return "\n".join(lines)


def _fold(mods: list[nn.Module], names: list[str], info: ImportInfo) -> tuple[list[nn.Module], list[str]]:
    """Multiply every Scale into the Linear/Conv before it (module docstring)."""
    out_m: list[nn.Module] = []
    out_n: list[str] = []
    for m, name in zip(mods, names):
        if not isinstance(m, Scale):
            out_m.append(m)
            out_n.append(name)
            continue
        prev = out_m[-1] if out_m else None
        s = m.scale
        if isinstance(prev, nn.Linear):
            if s.numel() not in (1, prev.out_features) or (s.dim() > 1 and s.numel() != 1):
                raise NIRError(f"node {name!r}: a gain of shape {tuple(s.shape)} cannot be folded into the "
                               f"{prev.out_features} rows of {out_n[-1]!r}", name)
            g = s.reshape(-1).expand(prev.out_features)
        elif isinstance(prev, (nn.Conv1d, nn.Conv2d)):
            c = prev.out_channels
            flat = s.reshape(c, -1) if s.numel() % c == 0 and s.numel() >= c else None
            if s.numel() == 1:
                g = s.reshape(-1).expand(c)
            elif flat is not None and s.dim() >= 1 and s.shape[0] == c and bool((flat == flat[:, :1]).all()):
                g = flat[:, 0]
            else:
                raise NIRError(f"node {name!r}: a gain of shape {tuple(s.shape)} varies within a channel and cannot "
                               f"be folded into the convolution {out_n[-1]!r}", name)
        else:
            what = f"{type(prev).__name__} {out_n[-1]!r}" if prev is not None else "the input"
            raise NIRError(f"node {name!r}: its input gain/scale cannot be folded with fold=True: it follows {what}, "
                           "not a Linear/Affine/Conv; import with fold=False (an hwsnn.nir.Scale module, float only)",
                           name)
        with torch.no_grad():
            shape = (-1,) + (1,) * (prev.weight.dim() - 1)
            prev.weight.mul_(g.to(prev.weight.dtype).reshape(shape))
            if prev.bias is not None:
                prev.bias.mul_(g.to(prev.bias.dtype))
        info.notes.append(f"{name}: gain folded into the weights of {out_n[-1]!r}")
    return out_m, out_n


def import_from_nir(
    graph: Any,
    dt: Optional[float] = None,
    *,
    source: Optional[str] = None,
    reset: Optional[str] = None,
    fold: bool = False,
    step_mode: str = "m",
    dtype: torch.dtype = torch.float32,
) -> nn.Sequential:
    r"""An hwsnn float network computing the NIR graph ``graph`` (a ``nir.NIRGraph`` or a ``.nir`` path).

    :param dt: the time step in seconds the graph is discretised at (not part of a NIR graph). Default:
        hwsnn's metadata in the graph, else the source's documented dt (``spikingjelly``/``snntorch``
        1e-4, ``norse`` 1e-3); for ``source='nir'`` it must be given
    :param source: whose conventions to read the graph with: ``'nir'``, ``'spikingjelly'``,
        ``'snntorch'``, ``'norse'`` or ``'hwsnn'`` (:mod:`hwsnn.nir.conventions`); default ``'hwsnn'``
        when the graph carries hwsnn's metadata, else ``'nir'``
    :param reset: ``'zero'`` (to ``v_reset``) or ``'subtract'`` for every spiking neuron; default:
        hwsnn's metadata, else the source's (``nir``: the NIR version's, ``snntorch``: required)
    :param fold: fold scales and input gains into the weights before them (chip-ready; module docstring)
    :param step_mode: ``'m'`` (``[T, N, ...]``) or ``'s'``
    :param dtype: the dtype of weights and biases
    :raises NIRError: a graph that is not a chain, an unknown node, a convention that cannot be
        honoured (the message names the node)
    """
    g, version = load_graph(graph)
    meta = load_meta(getattr(g, "metadata", None), "the graph")
    if source is None:
        source = "hwsnn" if meta is not None else "nir"
    if source not in SOURCES:
        raise ValueError(f"import_from_nir: source must be one of {', '.join(map(repr, SOURCES))}; got {source!r}")
    src = SOURCES[source]
    if source == "hwsnn" and meta is None:
        raise NIRError("source='hwsnn': the graph carries no hwsnn metadata (it was not written by hwsnn.nir)")
    if reset is not None and reset not in ("zero", "subtract"):
        raise ValueError(f"import_from_nir: reset must be 'zero', 'subtract' or None; got {reset!r}")
    if dt is None:
        dt = (meta or {}).get("dt") if source == "hwsnn" else src.dt
        if dt is None:
            raise ValueError("import_from_nir: dt is not part of a NIR graph and this one has no hwsnn metadata: pass "
                             "dt= in seconds (snnTorch and SpikingJelly write with 1e-4, Norse with 1e-3; or source=)")
    dt = check_dt(dt, "import_from_nir: dt")
    chain = chain_of(g, version)
    import nir  # noqa: F401  (load_graph checked it is installed)

    ctx = Context(dt=dt, source=src, reset=reset, version_reset=reset_for_version(version or nir.version),
                  dtype=dtype, fold=fold)
    info = ImportInfo(dt=dt, source=source, nir_version=version, resets=ctx.resets, notes=ctx.notes,
                      graph_metadata=meta)
    mods: list[nn.Module] = []
    names: list[str] = []
    taken: set[str] = set()
    for unit in chain.units:
        built = build_unit(unit, ctx)
        base = sanitize(unit.name, taken)
        for i, m in enumerate(built):
            mods.append(m)
            names.append(base if i == len(built) - 1 else sanitize(f"{unit.name}.scale", taken))
    if not mods:
        raise NIRError("the graph has no nodes between its Input and Output")
    if fold:
        mods, names = _fold(mods, names, info)
    net = nn.Sequential(*mods)
    set_step_mode(net, step_mode)
    net.layer_names = names
    net.nir_import = info
    return net
