"""Float layers with the seed API (SpikingJelly ``activation_based.layer`` names)."""

from .container import MultiStepContainer, SeqToANNContainer, StepModeContainer
from .dropout import DropConnectLinear, Dropout, Dropout2d
from .misc import Delay, PrintShapeModule, VotingLayer
from .online_learning import GradwithTrace, OTTTSequential, ReplaceforGrad, SpikeTraceOp
from .recurrent import RecurrentContainer
from .stateless import (
    AdaptiveAvgPool2d,
    AvgPool2d,
    BatchNorm1d,
    BatchNorm2d,
    Conv1d,
    Conv2d,
    Conv3d,
    Flatten,
    Linear,
    MaxPool2d,
)
from .synapse import SynapseFilter

__all__ = [
    "MultiStepContainer",
    "SeqToANNContainer",
    "StepModeContainer",
    "DropConnectLinear",
    "Dropout",
    "Dropout2d",
    "Delay",
    "PrintShapeModule",
    "VotingLayer",
    "GradwithTrace",
    "OTTTSequential",
    "ReplaceforGrad",
    "SpikeTraceOp",
    "RecurrentContainer",
    "AdaptiveAvgPool2d",
    "AvgPool2d",
    "BatchNorm1d",
    "BatchNorm2d",
    "Conv1d",
    "Conv2d",
    "Conv3d",
    "Flatten",
    "Linear",
    "MaxPool2d",
    "SynapseFilter",
]
