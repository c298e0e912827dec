"""Float layers with the seed API (SpikingJelly ``activation_based.layer`` names)."""

from .container import MultiStepContainer, SeqToANNContainer, StepModeContainer
from .dropout import DropConnectLinear, Dropout, Dropout2d
from .conv import Conv1d, Conv2d, Conv3d
from .delay import Delay
from .dense import Linear
from .dual import DualLinear
from .dual_recurrent import DualRecurrentContainer
from .flatten import Flatten
from .norm import BatchNorm1d, BatchNorm2d
from .output_code import OutputCode
from .online_learning import GradwithTrace, OTTTSequential, ReplaceforGrad, SpikeTraceOp
from .pool import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d
from .print_shape import PrintShapeModule
from .recurrent import RecurrentContainer
from .synapse import SynapseFilter
from .voting import VotingLayer

__all__ = [
    "MultiStepContainer",
    "SeqToANNContainer",
    "StepModeContainer",
    "DropConnectLinear",
    "DualLinear",
    "DualRecurrentContainer",
    "Dropout",
    "Dropout2d",
    "Delay",
    "PrintShapeModule",
    "VotingLayer",
    "OutputCode",
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
