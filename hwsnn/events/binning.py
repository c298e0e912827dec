r"""Event binning: pooled channels, fixed time steps, counts per ``[T, C]`` bin (tonic's ``ToFrame``).

A sample is a structured array of events with fields ``t`` (microseconds), ``x``, optionally
``y``, and ``p`` (tonic's layout: SHD ``(t, x, p)``, N-MNIST ``(x, y, t, p)``). :class:`EventBinner`
turns it into counts ``[T, C]`` (int16):

1. **pooling** (optional, integer arithmetic, no rounding surprises):

   - :class:`PoolChannels` (SHD): input channel :math:`c \in [0, W)` goes to pooled channel
     :math:`j = \lfloor c\,C / W \rfloor`, so pooled channel :math:`j` sums the adjacent channels
     :math:`\lceil jW/C \rceil \ldots \lceil (j+1)W/C \rceil - 1`; for SHD's :math:`W = 700` to
     :math:`C = 16`: groups of 43 or 44 channels (``0-43, 44-87, 88-131, 132-174, ...``).
   - :class:`PoolPixels` (N-MNIST): pixel :math:`(x, y)` goes to block
     :math:`(\lfloor x/k \rfloor, \lfloor y/k \rfloor)` (``k`` divides 34: 1, 2, 17 or 34).

2. **fixed steps**: step :math:`i \in [0, T)` counts the events with
   :math:`i\,\Delta t \le t < (i+1)\,\Delta t` (``Δt`` = ``dt_ms`` in whole microseconds, times from
   the start of the recording, :math:`t = 0`); events at :math:`t \ge T\Delta t` are dropped (the
   recording is cut), a shorter recording ends in empty steps. This is tonic's
   ``ToFrame(sensor_size, time_window=Δt, start_time=0, end_time=TΔt)``. (tonic's ``n_time_bins``
   stretches the bins over each sample's own duration, so a step would last a different time in
   every sample; fixed steps keep the neurons' time constants meaningful.)

3. **flattening**: tonic's frame ``[T, P, (H,) W]`` becomes ``[T, C]`` with channel
   :math:`c = (p\,H + y)\,W + x` (SHD: :math:`c = x`; N-MNIST at ``pool: 1``:
   :math:`c = 1156\,p + 34\,y + x`, 2312 channels).

The frames are int16 (tonic's type); :class:`EventBinner` checks that the binned total equals
the number of events inside :math:`[0, T\Delta t)`, so an overflowing bin is an error, never a
wrapped count.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

__all__ = ["EventBinner", "PoolChannels", "PoolPixels"]


@dataclass(frozen=True)
class PoolChannels:
    """Sum adjacent channels: ``x -> floor(x * out_channels / in_channels)`` (module docstring)."""

    in_channels: int
    out_channels: int

    def __call__(self, events: np.ndarray) -> np.ndarray:
        out = events.copy()
        out["x"] = (events["x"].astype(np.int64) * self.out_channels) // self.in_channels
        return out


@dataclass(frozen=True)
class PoolPixels:
    """Sum ``k x k`` pixel blocks: ``(x, y) -> (floor(x / k), floor(y / k))``."""

    k: int

    def __call__(self, events: np.ndarray) -> np.ndarray:
        out = events.copy()
        out["x"] = events["x"] // self.k
        out["y"] = events["y"] // self.k
        return out


@dataclass(frozen=True)
class EventBinner:
    """Events -> counts ``[T, C]`` int16 (module docstring). Picklable (DataLoader workers).

    :param width, height, polarities: the sensor (SHD ``700, 1, 1``; N-MNIST ``34, 34, 2``);
        ``height`` 1 for events without a ``y`` field
    :param T: number of steps; :param dt_us: step length in microseconds
    :param channels: pool ``x`` to this many groups (:class:`PoolChannels`); None: no pooling
    :param pool: pool pixels in ``pool x pool`` blocks (:class:`PoolPixels`); 1: none
    """

    width: int
    height: int
    polarities: int
    T: int
    dt_us: int
    channels: Optional[int] = None
    pool: int = 1

    @property
    def sensor_size(self) -> tuple[int, int, int]:
        """tonic's ``(W, H, P)`` after pooling."""
        w = self.width if self.channels is None else self.channels
        return (w // self.pool, max(self.height // self.pool, 1), self.polarities)

    @property
    def out_channels(self) -> int:
        w, h, p = self.sensor_size
        return w * h * p

    def check(self, events: np.ndarray) -> Optional[str]:
        """None when every event lies on the sensor, else what is wrong."""
        if not len(events):
            return None
        names = events.dtype.names or ()
        for field_name in ("t", "x"):
            if field_name not in names:
                return f"events without a {field_name!r} field (fields: {names})"
        if events["t"].min() < 0:
            return f"negative event time {events['t'].min()} us"
        spans = [("x", self.width)] + ([("y", self.height)] if "y" in names else [])
        if self.polarities > 1:
            spans.append(("p", self.polarities))
        for name, size in spans:
            lo, hi = int(events[name].min()), int(events[name].max())
            if lo < 0 or hi >= size:
                return f"event {name} in [{lo}, {hi}], outside the sensor's [0, {size})"
        return None

    def __call__(self, events: np.ndarray) -> np.ndarray:
        from tonic.transforms import ToFrame

        problem = self.check(events)
        if problem is not None:
            raise ValueError(problem)
        out = np.zeros((self.T, self.out_channels), dtype=np.int16)
        end = self.T * self.dt_us
        inside = int(np.count_nonzero(events["t"] < end)) if len(events) else 0
        if inside == 0:  # tonic returns one frame of another layout for an empty recording
            return out
        if self.channels is not None:
            events = PoolChannels(self.width, self.channels)(events)
        if self.pool > 1:
            events = PoolPixels(self.pool)(events)
        events = np.sort(events, order="t", kind="stable") if np.any(np.diff(events["t"]) < 0) else events
        to_frame = ToFrame(sensor_size=self.sensor_size, time_window=float(self.dt_us), start_time=0.0, end_time=float(end))
        frames = np.asarray(to_frame(events))
        if frames.shape[0] != self.T:
            raise ValueError(f"binning gave {frames.shape[0]} steps instead of T = {self.T} (tonic ToFrame)")
        out[...] = frames.reshape(self.T, -1)
        if int(out.sum(dtype=np.int64)) != inside:
            raise ValueError(f"more than {np.iinfo(np.int16).max} events in one bin (int16 counts would wrap): "
                             "use a shorter dt_ms or less pooling")
        return out
