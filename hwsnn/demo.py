"""The float stage of the main job on the embedded default task.

Builds :func:`default_network` (Linear → LIF → SynapseFilter → Dropout → Linear → LIF → Voting,
all multi-step), trains it on :func:`hwsnn.data.temporal_patterns` and reports held-out
accuracy. Quantization, export and the bit-exact simulation are added to this job by the
following releases (see the README's roadmap).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import functional, layer, neuron
from .data import temporal_patterns

__all__ = ["DemoConfig", "DemoResult", "default_network", "run_float_demo"]


@dataclass(frozen=True)
class DemoConfig:
    epochs: int = 15
    seed: int = 0
    train_samples: int = 2000
    test_samples: int = 500
    batch_size: int = 64
    lr: float = 5e-3
    T: int = 20
    channels: int = 16
    classes: int = 10
    hidden: int = 128
    voting_size: int = 10


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


def default_network(channels: int = 16, hidden: int = 128, classes: int = 10, voting_size: int = 10) -> nn.Sequential:
    """The default network: spikes ``[T, N, channels]`` in, voted class rates ``[T, N, classes]`` out."""
    net = nn.Sequential(
        layer.Linear(channels, hidden),
        neuron.LIFNode(tau=2.0, detach_reset=True),
        layer.SynapseFilter(tau=4.0),
        layer.Dropout(0.1),
        layer.Linear(hidden, classes * voting_size),
        neuron.LIFNode(tau=2.0, detach_reset=True),
        layer.VotingLayer(voting_size),
    )
    functional.set_step_mode(net, "m")
    return net


def _accuracy(net: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> float:
    net.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, x.shape[1], batch_size):
            rates = net(x[:, i : i + batch_size]).mean(0)
            correct += int((rates.argmax(1) == y[i : i + batch_size]).sum())
            functional.reset_net(net)
    return correct / x.shape[1]


def run_float_demo(config: DemoConfig = DemoConfig(), progress: bool = True) -> DemoResult:
    """Train the default network on the embedded task; returns accuracies and timing."""
    from tqdm.auto import tqdm

    torch.manual_seed(config.seed)
    shape = (config.T, config.channels, config.classes)
    x_train, y_train = temporal_patterns(config.train_samples, *shape, seed=config.seed)
    # held out: the same class templates, samples from another stream
    x_test, y_test = temporal_patterns(config.test_samples, *shape, seed=config.seed, sample_seed=config.seed + 10_000)
    net = default_network(config.channels, config.hidden, config.classes, config.voting_size)
    opt = torch.optim.Adam(net.parameters(), lr=config.lr)
    start = time.perf_counter()
    loss_value = float("nan")
    steps = config.epochs * ((config.train_samples + config.batch_size - 1) // config.batch_size)
    bar = tqdm(total=steps, desc="float training", unit="batch", disable=not progress, leave=False)
    for epoch in range(config.epochs):
        net.train()
        order = torch.randperm(config.train_samples)
        for i in range(0, config.train_samples, config.batch_size):
            idx = order[i : i + config.batch_size]
            rates = net(x_train[:, idx]).mean(0)
            loss = F.cross_entropy(rates * 10.0, y_train[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            functional.reset_net(net)
            loss_value = loss.item()
            bar.set_postfix(epoch=epoch + 1, loss=f"{loss_value:.3f}")
            bar.update()
    bar.close()
    seconds = time.perf_counter() - start
    result = DemoResult(
        train_accuracy=_accuracy(net, x_train, y_train, 256),
        test_accuracy=_accuracy(net, x_test, y_test, 256),
        final_loss=loss_value,
        seconds=seconds,
        net=net,
        x_test=x_test,
        y_test=y_test,
    )
    net.eval()
    return result

