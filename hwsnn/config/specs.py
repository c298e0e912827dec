"""The validated parts of a run file: ``data``, one ``network`` entry, ``training``."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Optional

__all__ = ["DataSpec", "LayerSpec", "TrainingSpec", "QAT_DEFAULTS"]


@dataclass(frozen=True)
class DataSpec:
    """``kind`` (one of :data:`DATA_KINDS`) and its options (npz ``path`` resolved to absolute)."""

    kind: str = "digits"
    options: dict = field(default_factory=dict)


@dataclass(frozen=True)
class LayerSpec:
    """One ``network`` entry: a :data:`LAYER_TYPES` name and its constructor arguments."""

    type: str
    options: dict = field(default_factory=dict)


#: QAT defaults by target layout: ``(qat_epochs, qat_lr)``. A Xylo core delivers each hidden ->
#: hidden hop and the readout one step late, which the float network does not model; a longer,
#: faster QAT trains through that timing (benchmarks/RESULTS.md section 5b: integer within
#: 1.1-1.4 points of float on three seeds, against 1.7-2.8 with the layered defaults)
QAT_DEFAULTS = {"layers": (3, 1e-4), "xylo_core": (6, 1e-3)}


@dataclass(frozen=True)
class TrainingSpec:
    """The ``training`` block. ``qat_epochs`` / ``qat_lr`` ``None``: the target's default
    (:data:`QAT_DEFAULTS`, resolved by :meth:`for_target` when the job starts)."""

    epochs: int = 40
    lr: float = 1e-2
    batch_size: int = 32
    qat_epochs: Optional[int] = None
    qat_lr: Optional[float] = None
    calibration_batches: int = 4

    def for_target(self, target: Any) -> "TrainingSpec":
        """This spec with ``qat_epochs`` / ``qat_lr`` that are ``None`` set to ``target``'s defaults
        (a :class:`targets.Target`; by its ``limits.layout``)."""
        epochs, lr = QAT_DEFAULTS.get(target.limits.layout, QAT_DEFAULTS["layers"])
        return replace(self, qat_epochs=epochs if self.qat_epochs is None else self.qat_epochs,
                       qat_lr=lr if self.qat_lr is None else self.qat_lr)
