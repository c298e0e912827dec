r"""Embedded data for demos and tests (bundled or generated, never downloaded).

:func:`digits_spikes` turns scikit-learn's bundled handwritten digits (1797 images of 8x8 pixels,
values 0..16, shipped inside scikit-learn: no download) into spike trains shown row by row (a
thermometer code of each pixel plus a one-hot code of the row's position), so a network has to
accumulate the evidence of rows it no longer sees (the default task of ``hwsnn run``).

:func:`temporal_patterns` draws a spike-pattern classification task: each class owns a fixed
random spatio-temporal template (``[T, channels]``) in which every channel fires
``round(template_rate * T)`` times at class-specific steps (equal rates across classes: only the
timing tells them apart); a sample is its class template with every spike moved by a random jitter of at most ``jitter``
steps, dropped with probability ``drop``, plus background spikes at rate ``noise``. Telling the
classes apart needs timing, so the network needs memory (membranes, synapse filters, delays).
"""

from __future__ import annotations

import functools
from typing import Optional

import torch

__all__ = ["digits_spikes", "digits_split", "temporal_patterns"]

#: the digits images are 8 x 8 pixels with integer values 0..16
DIGITS_SIDE = 8
DIGITS_MAX = 16
#: allowed sizes of the one-hot row-position code of :func:`digits_spikes` (divisors of 8, or 0)
POSITION_CHANNELS = (0, 1, 2, 4, 8)


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


def _digits_images() -> tuple[torch.Tensor, torch.Tensor]:
    """All 1797 bundled digit images ``[N, 8, 8]`` (int64, 0..16) and labels ``[N]`` (int64);
    cached, so callers must not modify them in place."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:  # an optional extra
        raise ImportError(
            'digits_spikes needs scikit-learn (its bundled digits data set): pip install "hwsnn[digits]" '
            "(or pip install scikit-learn)"
        ) from exc
    return _digits_tensors(load_digits)


@functools.lru_cache(maxsize=1)
def _digits_tensors(load_digits) -> tuple[torch.Tensor, torch.Tensor]:
    bunch = load_digits()
    images = torch.from_numpy(bunch.images.round().astype("int64"))
    labels = torch.from_numpy(bunch.target.astype("int64"))
    return images, labels


def digits_split(labels: torch.Tensor, split: str, test_fraction: float, split_seed: int) -> torch.Tensor:
    r"""Indices of ``split`` (``"train"``, ``"test"`` or ``"all"``) in a stratified random split.

    For every class :math:`c` with :math:`n_c` samples, a permutation drawn from a
    :class:`torch.Generator` seeded with ``split_seed`` puts its first
    :math:`\mathrm{round}(f\,n_c)` samples (:math:`f` = ``test_fraction``, at least 1 and at most
    :math:`n_c - 1`) in the test set and the rest in the training set, so both sets keep the class
    proportions and never share a sample. The chosen indices are then shuffled with the same
    generator, so that the classes are mixed along the split (``limit`` takes a prefix). ``"all"`` is every sample in the data set's
    order.
    """
    if split not in ("train", "test", "all"):
        raise ValueError(f"digits_split: split must be 'train', 'test' or 'all'; got {split!r}")
    if split == "all":
        return torch.arange(labels.numel())
    g = torch.Generator().manual_seed(int(split_seed))
    train, test = [], []
    for c in torch.unique(labels).tolist():
        members = torch.nonzero(labels == c).flatten()
        members = members[torch.randperm(members.numel(), generator=g)]
        n_test = min(max(1, round(test_fraction * members.numel())), members.numel() - 1)
        test.append(members[:n_test])
        train.append(members[n_test:])
    chosen = torch.cat(train if split == "train" else test)
    return chosen[torch.randperm(chosen.numel(), generator=g)]


def digits_spikes(
    split: str = "train",
    *,
    row_steps: int = 2,
    tail_steps: int = 4,
    levels: tuple[int, ...] = (4, 10),
    columns: tuple[int, int] = (1, 7),
    position_channels: int = 4,
    test_fraction: float = 0.2,
    split_seed: int = 0,
    limit: Optional[int] = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""scikit-learn's handwritten digits as spike trains, one image row per time slot.

    Returns ``(x, y)``: spikes ``x`` float32 in :math:`\{0, 1\}` of shape ``[T, N, channels]`` and
    labels ``y`` int64 ``[N]`` (0..9), where :math:`T = 8 R + Z` (:math:`R` = ``row_steps``,
    :math:`Z` = ``tail_steps``) and ``channels`` :math:`= W L + P` (:math:`W = c_1 - c_0` pixel
    columns kept, ``columns`` :math:`= (c_0, c_1)`; :math:`L` = ``len(levels)``;
    :math:`P` = ``position_channels``). The defaults give :math:`6 \cdot 2 + 4 = 16` channels, the
    input channels that Xylo has.

    Encoding of an image :math:`P` (:math:`P_{r,c} \in \{0, \ldots, 16\}`, row :math:`r`, column
    :math:`c`) with thresholds :math:`\ell_0 < \ldots < \ell_{L-1}` (a thermometer code): while row
    :math:`r = \lfloor t / R \rfloor` is shown (:math:`t < 8R`),

    .. math::
        x[t, (c - c_0) L + j] &= [\,P_{r,c} > \ell_j\,], \qquad c_0 \le c < c_1,\ 0 \le j < L \\
        x[t, W L + i] &= [\,\lfloor r P / 8 \rfloor = i\,], \qquad 0 \le i < P

    and every channel is silent for the :math:`Z` tail steps :math:`8R \le t < 8R + Z`, which let
    the readout settle (and cover the one-step latency of every Loihi dense layer after the first).

    Row :math:`r` is shown for the :math:`R` steps :math:`rR, \ldots, rR + R - 1` (top row first);
    pixel :math:`c` owns the :math:`L` adjacent channels :math:`(c - c_0)L, \ldots`, and how many
    of them fire grows with the pixel's ink. The last :math:`P` channels are a one-hot code of the
    row's position (:math:`P \in \{0, 1, 2, 4, 8\}`; with :math:`P = 4`, rows 0-1, 2-3, 4-5, 6-7):
    without it a network of per-layer time constants sees the rows as a nearly position-free
    sequence (measured: under 90 % held-out accuracy); with it, it still has to accumulate the
    evidence of all rows over time. Columns 0 and 7 are dropped by default: they hold ink in
    under 1 % of the images. At any step the network sees one row only.

    The split is stratified, random and deterministic (:func:`digits_split`): ``"train"`` and
    ``"test"`` (a ``test_fraction`` of every class) never share an image; ``"all"`` is the whole
    data set in its own order. ``limit`` keeps the first ``limit`` samples of the split (all when
    it is larger). Needs scikit-learn (``pip install "hwsnn[digits]"``); nothing is downloaded.

    :param split: ``"train"``, ``"test"`` or ``"all"``
    :param row_steps: :math:`R \ge 1`, steps per image row
    :param tail_steps: :math:`Z \ge 0`, silent steps after the last row
    :param levels: strictly increasing thermometer thresholds in ``[0, 15]``
    :param columns: ``(c0, c1)``, the pixel columns ``c0 <= c < c1`` kept (``0 <= c0 < c1 <= 8``)
    :param position_channels: :math:`P`, channels of the one-hot row-position code (0, 1, 2, 4 or 8)
    :param test_fraction: share of every class held out, in :math:`(0, 1)`
    :param split_seed: seed of the split
    :param limit: keep the first ``limit`` (>= 1) samples; ``None``: all
    """
    if split not in ("train", "test", "all"):
        raise ValueError(f"digits_spikes: split must be 'train', 'test' or 'all'; got {split!r}")
    for name, value, low in (("row_steps", row_steps, 1), ("tail_steps", tail_steps, 0), ("split_seed", split_seed, None)):
        if isinstance(value, bool) or not isinstance(value, int) or (low is not None and value < low):
            raise ValueError(f"digits_spikes: {name} must be an int{f' >= {low}' if low is not None else ''}; got {value!r}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"digits_spikes: limit must be None or an int >= 1; got {limit!r}")
    if isinstance(test_fraction, bool) or not isinstance(test_fraction, (int, float)) or not 0.0 < test_fraction < 1.0:
        raise ValueError(f"digits_spikes: test_fraction must lie in (0, 1); got {test_fraction!r}")
    levels = tuple(levels)
    if (
        not levels
        or any(isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < DIGITS_MAX for v in levels)
        or any(a >= b for a, b in zip(levels, levels[1:]))
    ):
        raise ValueError(
            f"digits_spikes: levels must be a non-empty, strictly increasing tuple of ints in [0, {DIGITS_MAX - 1}]; got {levels!r}"
        )
    columns = tuple(columns)
    if (
        len(columns) != 2
        or any(isinstance(v, bool) or not isinstance(v, int) for v in columns)
        or not 0 <= columns[0] < columns[1] <= DIGITS_SIDE
    ):
        raise ValueError(f"digits_spikes: columns must be (c0, c1) with 0 <= c0 < c1 <= {DIGITS_SIDE}; got {columns!r}")
    if isinstance(position_channels, bool) or position_channels not in POSITION_CHANNELS:
        raise ValueError(f"digits_spikes: position_channels must be one of {POSITION_CHANNELS}; got {position_channels!r}")
    images, labels = _digits_images()
    idx = digits_split(labels, split, float(test_fraction), split_seed)
    if limit is not None:
        idx = idx[:limit]
    images, labels = images[idx, :, columns[0] : columns[1]], labels[idx]  # [N, 8, W], [N]
    thresholds = torch.tensor(levels, dtype=images.dtype)
    code = (images.unsqueeze(-1) > thresholds).to(torch.float32)  # [N, row, col, L]
    rows = code.flatten(2).transpose(0, 1)  # [8 rows, N, W * L], channel = (col - c0) * L + level
    if position_channels:
        group = torch.arange(DIGITS_SIDE) * position_channels // DIGITS_SIDE  # row -> its position channel
        onehot = torch.nn.functional.one_hot(group, position_channels).to(torch.float32)  # [8, P]
        rows = torch.cat([rows, onehot.unsqueeze(1).expand(-1, rows.shape[1], -1)], dim=2)
    x = rows.repeat_interleave(row_steps, dim=0)  # each row for row_steps steps
    tail = x.new_zeros((tail_steps,) + x.shape[1:])
    return torch.cat([x, tail]).contiguous(), labels.clone()
