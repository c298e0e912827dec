"""Embedded data for demos and tests (generated, never downloaded).

:func:`temporal_patterns` draws a spike-pattern classification task: each class owns a fixed
random spatio-temporal template (``[T, channels]``) in which every channel fires
``round(template_rate * T)`` times at class-specific steps (equal rates across classes: only the
timing tells them apart); a sample is its class template with every spike moved by a random jitter of at most ``jitter``
steps, dropped with probability ``drop``, plus background spikes at rate ``noise``. Telling the
classes apart needs timing, so the network needs memory (membranes, synapse filters, delays).
"""

from __future__ import annotations

import torch

__all__ = ["temporal_patterns"]


def temporal_patterns(
    n_samples: int,
    T: int = 20,
    channels: int = 16,
    classes: int = 4,
    template_rate: float = 0.2,
    jitter: int = 1,
    drop: float = 0.1,
    noise: float = 0.02,
    seed: int = 0,
    sample_seed: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``(spikes [T, n_samples, channels] float32 in {0,1}, labels [n_samples] int64)``.

    The class templates depend on ``seed`` only, so a train and a test set drawn with the same
    ``seed`` and different ``sample_seed`` (default ``seed + 1``) share their classes but no samples.
    """
    for name, value, low in (("n_samples", n_samples, 1), ("T", T, 1), ("channels", channels, 1), ("classes", classes, 2), ("jitter", jitter, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"temporal_patterns: {name} must be an int >= {low}; got {value!r}")
    for name, value in (("template_rate", template_rate), ("drop", drop), ("noise", noise)):
        if not 0.0 <= float(value) <= 1.0:
            raise ValueError(f"temporal_patterns: {name} must lie in [0, 1]; got {value!r}")
    g_templates = torch.Generator().manual_seed(seed)
    # every channel fires the same number of times in every class: only the timing differs
    k = max(1, round(template_rate * T))
    order = torch.rand(classes, T, channels, generator=g_templates).argsort(dim=1)
    templates = (order < k).float()
    g = torch.Generator().manual_seed(seed + 1 if sample_seed is None else sample_seed)
    labels = torch.randint(0, classes, (n_samples,), generator=g)
    x = templates[labels]  # [n, T, C]
    if jitter:
        shifts = torch.randint(-jitter, jitter + 1, (n_samples, 1, channels), generator=g)
        t_idx = (torch.arange(T).view(1, T, 1) - shifts).clamp(0, T - 1)
        x = torch.gather(x, 1, t_idx)
    x = x * (torch.rand(x.shape, generator=g) >= drop).float()
    x = torch.maximum(x, (torch.rand(x.shape, generator=g) < noise).float())
    return x.transpose(0, 1).contiguous(), labels
