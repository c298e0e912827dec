"""Compatibility module: the routing ops now live one per file.

:mod:`.dropout` (``dropout``, ``dropout2d``), :mod:`.delay` (``delay``), :mod:`.voting`
(``voting``), :mod:`.pool` (``avgpool2d``, ``maxpool2d``), :mod:`.flatten` (``flatten``); their
shared helpers are in :mod:`.chunk` and :mod:`.sumdivide`. Importing this module imports them all,
which registers the ops (``sim.ops.__init__`` imports it); the classes are re-exported here for
code that still imports them from ``sim.ops.misc``.
"""

from .dropout import Dropout
from .delay import Delay
from .voting import Voting
from .pool import AvgPool2d, MaxPool2d
from .flatten import Flatten

__all__ = ["Dropout", "Delay", "Voting", "AvgPool2d", "MaxPool2d", "Flatten"]
