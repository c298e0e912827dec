"""The validated parts of a run file: ``data``, one ``network`` entry, ``training``."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["DataSpec", "LayerSpec", "TrainingSpec"]


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


@dataclass(frozen=True)
class TrainingSpec:
    epochs: int = 40
    lr: float = 1e-2
    batch_size: int = 32
    qat_epochs: int = 3
    qat_lr: float = 1e-4
    calibration_batches: int = 4
