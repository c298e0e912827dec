"""Where training runs: ``cpu``, ``cuda`` or ``auto`` (``hwsnn run --device``).

* :func:`resolve_device`: the request as a :class:`torch.device` (``cuda:<local rank>`` for a
  process started by ``torchrun``), or a :class:`DeviceError` (exit status 2 on the command line)
  when CUDA is asked for and cannot be had.
* :func:`kernel_backend`: the fused neuron kernels ``backend='auto'`` runs on that device
  (:func:`hwsnn.backend.resolve_backend`: Triton on CUDA when installed, numba on CPU when
  installed, else the torch kernels), for the run summary and the report.

Only training (the float stage, calibration and QAT) runs on the device; conversion, export and
simulation run on CPU from the trained weights, so the bundle does not depend on where the
network was trained.
"""

from __future__ import annotations

from typing import Optional

import torch

__all__ = ["DEVICES", "DeviceError", "resolve_device", "kernel_backend", "describe_device"]

#: the values of ``--device``
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")


class DeviceError(ValueError):
    """A device that cannot be used (CUDA asked for without a GPU, too few GPUs): exit status 2."""


def resolve_device(request: str = "auto", local_rank: int = 0) -> torch.device:
    """The device for ``request`` (one of :data:`DEVICES`).

    ``auto``: ``cuda:<local_rank>`` when torch sees a CUDA device, else ``cpu``; ``cuda``: the same
    GPU, or :class:`DeviceError` when there is none (a CPU build of torch, no driver, or fewer
    GPUs than processes on this node); ``cpu``: the CPU.
    """
    if request not in DEVICES:
        raise DeviceError(f"--device {request!r}: expected one of {', '.join(DEVICES)}")
    if request == "cpu":
        return torch.device("cpu")
    available = torch.cuda.is_available()
    if request == "auto" and not available:
        return torch.device("cpu")
    if not available:
        build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
        raise DeviceError(f"--device cuda: no CUDA device is available (torch {torch.__version__}, {build}); "
                          "use --device cpu, or --device auto to fall back to the CPU")
    count = torch.cuda.device_count()
    if local_rank >= count:
        if request == "auto":
            raise DeviceError(f"--device auto: this process is local rank {local_rank}, but the node has {count} "
                              f"GPU(s); start at most {count} process(es) per node, or use --device cpu")
        raise DeviceError(f"--device cuda: this process is local rank {local_rank}, but the node has {count} GPU(s); "
                          f"start at most {count} process(es) per node (torchrun --nproc-per-node)")
    return torch.device("cuda", local_rank)


def kernel_backend(device: torch.device) -> str:
    """The fused-kernel backend that ``backend='auto'`` picks on ``device`` (``triton``, ``numba`` or ``torch``)."""
    from .backend import resolve_backend

    return resolve_backend("auto", torch.device(device))


def describe_device(device: torch.device) -> str:
    """``cpu`` or ``cuda:0 (NVIDIA H100 80GB HBM3)``: the device and, for a GPU, its name."""
    device = torch.device(device)
    if device.type == "cuda":
        name: Optional[str]
        try:
            name = torch.cuda.get_device_name(device)
        except Exception:  # noqa: BLE001 - the name is decoration only
            name = None
        return f"{device} ({name})" if name else str(device)
    return str(device)
