r"""The float stage of the main job on the embedded default task: handwritten digits, row by row.

* :func:`default_network`: a chip-ready multi-step network (dense → LIF → dropout → dense →
  CUBA LIF → synapse filter → delay → voting) whose neurons use the reset kind the target allows,
  so that :func:`quant.convert` maps it onto ``generic_int8``, ``loihi`` and ``ideal``; on the Xylo
  chips the network that fits them (:mod:`hwsnn.demo_xylo`: CUBA neurons, ten classes as codewords
  over 8 readouts, :class:`~hwsnn.layer.OutputCode`).
* :func:`train` / :func:`accuracy`: the float training loop and the held-out accuracy, for any
  module mapping spikes ``[T, N, C]`` to class outputs ``[T, N, classes]`` (the QAT stage reuses
  them on a quantization-aware model).
* :func:`run_float_demo`: both on :func:`hwsnn.data.digits_spikes` (scikit-learn's digits).

Loss: with output :math:`o[t, n, k]` (:math:`T` steps, the voted class outputs), the class
scores are the means over time :math:`r_{nk} = \frac{1}{T}\sum_t o[t, n, k]` and the loss is the
cross-entropy :math:`-\frac{1}{N}\sum_n \log \operatorname{softmax}(g\, r_n)_{y_n}` with gain
:math:`g` (``gain``); the predicted class is :math:`\arg\max_k r_{nk}`. The learning rate of
Adam decays along a cosine, :math:`\eta_i = \eta\,(1 + \cos(\pi i / n))/2` after batch
:math:`i` of :math:`n`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional, Union

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import functional, layer, neuron
from .data import digits_spikes
from .demo_xylo import is_xylo, xylo_network

if TYPE_CHECKING:
    from targets import Target

__all__ = ["DemoConfig", "DemoResult", "accuracy", "default_network", "reset_kind", "run_float_demo", "default_gain",
           "train", "VOTE_GAIN", "CODE_GAIN"]


@dataclass(frozen=True)
class DemoConfig:
    """Settings of :func:`run_float_demo`; the defaults are the measured main-job settings.

    ``train_samples`` / ``test_samples`` limit the digits splits (``None``: all 1438 / 359
    images); ``channels`` and ``T`` follow from the encoding.
    """

    epochs: int = 40
    seed: int = 0
    train_samples: Optional[int] = None
    test_samples: Optional[int] = None
    batch_size: int = 32
    lr: float = 1e-2
    gain: Optional[float] = None  # None: default_gain(net) (5; 2 for an output code)
    cosine: bool = True
    # encoding (hwsnn.data.digits_spikes)
    row_steps: int = 2
    tail_steps: int = 4
    levels: tuple[int, ...] = (4, 10)
    columns: tuple[int, int] = (1, 7)
    position_channels: int = 4
    test_fraction: float = 0.2
    split_seed: int = 0
    # network (default_network)
    classes: int = 10
    hidden: int = 64
    voting_size: int = 4
    tau_hidden: float = 2.0
    tau_syn: float = 8.0
    tau_readout: float = 4.0
    tau_output: float = 2.0
    dropout: Optional[float] = None  # None: the network's own (0.1; 0.25 on Xylo)
    delay: int = 0

    @property
    def channels(self) -> int:
        """Input channels: pixel columns times thermometer levels, plus the position code."""
        return (self.columns[1] - self.columns[0]) * len(self.levels) + self.position_channels

    @property
    def T(self) -> int:
        """Time steps per sample: 8 rows of ``row_steps`` steps plus ``tail_steps``."""
        return 8 * self.row_steps + self.tail_steps


@dataclass(frozen=True)
class DemoResult:
    train_accuracy: float
    test_accuracy: float
    final_loss: float
    seconds: float
    #: the trained float network (eval mode) and the held-out spikes [T, N, C] / labels [N]
    net: Optional[nn.Module] = None
    x_test: Optional[torch.Tensor] = None
    y_test: Optional[torch.Tensor] = None


def reset_kind(target: Union[str, "Target"]) -> Optional[float]:
    """The ``v_reset`` a neuron should use on ``target``: ``None`` (soft, subtractive reset) where
    the target allows ``subtract``, else ``0.0`` (hard reset to zero, e.g. Loihi)."""
    import targets

    t = targets.load(target) if isinstance(target, str) else target
    allowed = tuple(t.neuron.reset)
    if "subtract" in allowed:
        return None
    if "zero" in allowed:
        return 0.0
    raise ValueError(f"default_network: target {t.name!r} allows neither a subtractive nor a zero reset: {allowed}")


def default_network(
    target: Union[str, "Target"] = "generic_int8",
    *,
    channels: int = 16,
    hidden: int = 64,
    classes: int = 10,
    voting_size: int = 4,
    tau_hidden: float = 2.0,
    tau_syn: float = 8.0,
    tau_readout: float = 4.0,
    tau_output: float = 2.0,
    dropout: Optional[float] = None,
    delay: int = 0,
) -> nn.Sequential:
    r"""The default network for ``target``: spikes ``[T, N, channels]`` in, voted class outputs
    ``[T, N, classes]`` out (multi-step mode)::

        Linear(channels, hidden) → LIFNode(tau_hidden) → Dropout(dropout)
          → Linear(hidden, classes·voting_size) → CubaLIFNode(tau_syn, tau_readout)
          → SynapseFilter(tau_output) → Delay(delay) → VotingLayer(voting_size)

    The hidden layer detects features of the row on view (with :math:`\tau_h = 2` its membrane
    :math:`V \leftarrow V - V/\tau_h + WX` keeps half of the previous step); the readout's
    synaptic current :math:`I \leftarrow I - I/\tau_{syn} + W_o S_h` (:math:`\tau_{syn} = 8`: a
    memory of about four rows) accumulates their evidence across rows; the synapse filter
    :math:`I_o \leftarrow I_o - (1 - S_o) I_o/\tau_o + S_o` smooths the readout spikes :math:`S_o`
    (binary on every target, so its integer twin applies) and the delay postpones them by
    ``delay`` steps (0: the identity; Xylo has no delay FIFOs).

    Chip-ready choices: no biases (Xylo has none on dense layers), ``decay_input=False`` (Loihi's
    CUBA form), the reset the target allows (:func:`reset_kind`: subtractive where allowed, else
    to zero, as on Loihi), time constants that are powers of two (exact shift and mul12 decays),
    ``hidden`` ≤ 64 and ``classes·voting_size`` ≤ 64 (Xylo's fan-out of 64) and a power-of-two
    ``voting_size`` (an exact integer vote).

    **Xylo targets** (``xylo``, ``xylo_audio3``, ``xylo_imu``: one population of CUBA neurons, 8
    readouts on XyloAudio 2) get :func:`hwsnn.demo_xylo.xylo_network` instead: CUBA hidden neurons
    and ten classes as codewords over 8 readouts, decoded off the chip by nearest codeword
    (:class:`~hwsnn.layer.OutputCode`); there ``hidden`` (per hidden layer), ``channels``, ``classes``
    and ``dropout`` apply, the other arguments belong to the voting network. ``dropout=None``: 0.1,
    on Xylo 0.25.
    """
    if is_xylo(target):
        return xylo_network(channels=channels, classes=classes, hidden=hidden,
                            **({} if dropout is None else {"dropout": dropout}))
    v_reset = reset_kind(target)
    net = nn.Sequential(
        layer.Linear(channels, hidden, bias=False),
        neuron.LIFNode(tau=tau_hidden, decay_input=False, v_reset=v_reset, detach_reset=True),
        layer.Dropout(0.1 if dropout is None else dropout),
        layer.Linear(hidden, classes * voting_size, bias=False),
        neuron.CubaLIFNode(tau_syn=tau_syn, tau_mem=tau_readout, v_reset=v_reset, detach_reset=True),
        layer.SynapseFilter(tau=tau_output),
        layer.Delay(delay),
        layer.VotingLayer(voting_size),
    )
    functional.set_step_mode(net, "m")
    return net


def _scores(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Mean output over time ``[N, classes]`` of a multi-step network."""
    return net(x).mean(0)


#: the loss gain of a network whose class scores are votes or filtered spikes (per step in [0, 1])
VOTE_GAIN = 5.0
#: the loss gain of a network ending with an :class:`~hwsnn.layer.OutputCode` (per-step scores in
#: [-(M - w), w], for the default code [-4, 4]); measured on the digits: 2 beats 1.25 and 3
CODE_GAIN = 2.0


def default_gain(net: nn.Module) -> float:
    """The loss gain :func:`train` uses when none is given: :data:`CODE_GAIN` for a network ending
    with an :class:`~hwsnn.layer.OutputCode`, else :data:`VOTE_GAIN`."""
    last = list(net)[-1] if isinstance(net, nn.Sequential) and len(net) else None
    return CODE_GAIN if isinstance(last, layer.OutputCode) else VOTE_GAIN


def train(
    net: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    epochs: int,
    lr: float,
    batch_size: int,
    seed: int,
    gain: Optional[float] = None,
    cosine: bool = True,
    progress: bool = True,
    desc: str = "float training",
) -> float:
    r"""Train ``net`` on spikes ``x`` ``[T, N, C]`` and labels ``y`` ``[N]``; returns the last batch's loss.

    Adam (learning rate ``lr``) on the parameters with ``requires_grad``; loss: the cross-entropy of
    ``gain`` × the mean output over time (module docstring; ``None``: :func:`default_gain`, 5 for votes,
    2 for the scores of an output code); :func:`hwsnn.functional.reset_net`
    after every batch. Deterministic for a ``seed``: ``torch.manual_seed(seed)`` (initial dropout
    masks, surrogate noise if any) and the batch order from a :class:`torch.Generator` seeded with
    ``seed``. Works for any module mapping ``[T, N, C]`` to ``[T, N, classes]`` whose memories
    :func:`~hwsnn.functional.reset_net` resets (e.g. a quantization-aware model). Runs on the
    device of ``net``'s parameters (each batch of ``x``/``y`` is moved there).

    Data-parallel when a process group is set up (:func:`hwsnn.parallel.current`, e.g. under
    ``torchrun``): ``batch_size`` is the per-rank batch, the ranks share every epoch's permutation
    (:func:`hwsnn.parallel.shard_batches`), DistributedDataParallel averages the gradients (the
    step equals one process with batch ``batch_size × world_size``), rank ``r`` seeds its dropout
    masks with :func:`hwsnn.parallel.rank_seed` and only rank 0 shows the progress bar; the loss
    returned is the global batch's.
    """
    from tqdm.auto import tqdm

    from . import parallel

    if epochs < 1 or batch_size < 1:
        raise ValueError(f"train: epochs and batch_size must be >= 1; got {epochs}, {batch_size}")
    if x.dim() < 3 or x.shape[1] != y.shape[0]:
        raise ValueError(f"train: x must be [T, N, ...] with N = len(y); got {tuple(x.shape)} and {tuple(y.shape)}")
    gain = default_gain(net) if gain is None else float(gain)
    params = [p for p in net.parameters() if p.requires_grad]
    if not params:
        raise ValueError("train: the network has no parameter with requires_grad")
    par = parallel.current()
    device = params[0].device
    torch.manual_seed(parallel.rank_seed(seed, par.rank))
    g = torch.Generator().manual_seed(seed)  # the same permutations on every rank
    opt = torch.optim.Adam(params, lr=lr)
    n = x.shape[1]
    batches = (n + batch_size * par.world_size - 1) // (batch_size * par.world_size)
    total = epochs * batches
    # cosine decay of the learning rate over all batches: lr_i = lr (1 + cos(pi i / total)) / 2
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: 0.5 * (1.0 + math.cos(math.pi * i / total))) if cosine else None
    loss_value = float("nan")
    model = parallel.wrap(net, par)
    functional.reset_net(net)
    with tqdm(total=total, desc=desc, unit="batch", disable=not progress or not par.is_main, leave=False) as bar:
        for epoch in range(epochs):
            net.train()
            order = torch.randperm(n, generator=g)
            for idx, weight in parallel.shard_batches(order, batch_size, par):
                xb, yb = x[:, idx].to(device), y[idx].to(device)
                if par.active:  # sum over my samples x W/m: DDP's average is the global batch's mean
                    loss = F.cross_entropy(_scores(model, xb) * gain, yb, reduction="sum") * weight
                else:
                    loss = F.cross_entropy(_scores(model, xb) * gain, yb)
                opt.zero_grad()
                loss.backward()
                opt.step()
                if sched is not None:
                    sched.step()
                functional.reset_net(net)
                loss_value = loss.item()
                bar.set_postfix(epoch=epoch + 1, loss=f"{loss_value:.3f}")
                bar.update()
    del model
    if par.active:  # the last global batch's mean loss
        loss_value = parallel.all_sum(loss_value, par) / par.world_size
    return loss_value


def accuracy(net: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 256) -> float:
    """Share of samples of ``x`` ``[T, N, C]`` whose largest mean output is the label ``y``
    (eval mode, no gradients, :func:`~hwsnn.functional.reset_net` before and after every batch;
    the network is left in eval mode). Runs on the device of ``net``'s parameters. Under a process
    group every rank scores its contiguous share of the samples and the counts are summed
    (:func:`hwsnn.parallel.shard_range`), so every rank returns the same accuracy."""
    from . import parallel

    net.eval()
    n = x.shape[1]
    if n == 0:
        raise ValueError("accuracy: no samples")
    par = parallel.current()
    lo, hi = parallel.shard_range(n, par)
    p = next(net.parameters(), None)
    device = p.device if p is not None else x.device
    correct = 0
    functional.reset_net(net)
    with torch.no_grad():
        for i in range(lo, hi, batch_size):
            j = min(i + batch_size, hi)
            scores = _scores(net, x[:, i:j].to(device))
            correct += int((scores.argmax(1) == y[i:j].to(device)).sum())
            functional.reset_net(net)
    return parallel.all_sum(correct, par) / n


def run_float_demo(config: DemoConfig = DemoConfig(), target: Union[str, "Target"] = "generic_int8",
                   progress: bool = True) -> DemoResult:
    """Train :func:`default_network` for ``target`` on the digits training split; returns the
    accuracies (training split and held-out test split), the final loss, the training time and
    the trained network (eval mode) with the held-out spikes and labels."""
    data = dict(row_steps=config.row_steps, tail_steps=config.tail_steps, levels=config.levels, columns=config.columns,
                position_channels=config.position_channels, test_fraction=config.test_fraction,
                split_seed=config.split_seed)
    x_train, y_train = digits_spikes("train", limit=config.train_samples, **data)
    x_test, y_test = digits_spikes("test", limit=config.test_samples, **data)
    torch.manual_seed(config.seed)  # the initial weights
    net = default_network(target, channels=config.channels, hidden=config.hidden, classes=config.classes,
                          voting_size=config.voting_size, tau_hidden=config.tau_hidden, tau_syn=config.tau_syn,
                          tau_readout=config.tau_readout, tau_output=config.tau_output, dropout=config.dropout,
                          delay=config.delay)
    start = time.perf_counter()
    loss = train(net, x_train, y_train, epochs=config.epochs, lr=config.lr, batch_size=config.batch_size,
                 seed=config.seed, gain=config.gain, cosine=config.cosine, progress=progress)
    seconds = time.perf_counter() - start
    return DemoResult(
        train_accuracy=accuracy(net, x_train, y_train),
        test_accuracy=accuracy(net, x_test, y_test),
        final_loss=loss,
        seconds=seconds,
        net=net.eval(),
        x_test=x_test,
        y_test=y_test,
    )
