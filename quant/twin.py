"""Rebuild the torch integer twin network from an export directory.

``load_twin(export_dir)`` reads the verified bundle (:func:`quant.load_export`) and builds each
layer's twin from its op description (``twin_from_spec``, the inverse of ``twin.to_spec``) with
exactly the exported integers, so that a report compares the simulator with the twin of *the
shipped tables* (``hwsnn report``), and an export round trip (twin -> export -> twin) can be
checked output for output.
"""

from __future__ import annotations

import os
from typing import Union

import torch.nn as nn

from hwsnn.fixed.base import twin_from_spec
from hwsnn.functional import set_step_mode
from targets.bundle import Bundle, load_bundle

__all__ = ["load_twin"]


def load_twin(export: Union[str, os.PathLike, Bundle], step_mode: str = "m") -> nn.Sequential:
    """The :class:`torch.nn.Sequential` of twins holding the export's integers (verified on load).

    Dropout layers come back in the exported mode (``active``: training, masks drawn from the
    exported ``draw``); everything else is stateless between runs (call
    :func:`hwsnn.functional.reset_net` between samples, as for any twin).
    """
    ex = export if isinstance(export, Bundle) else load_bundle(export)
    net = nn.Sequential(*[twin_from_spec(op, ex.target) for op in ex.ops])
    set_step_mode(net, step_mode)
    return net
