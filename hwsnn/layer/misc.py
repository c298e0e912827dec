# placeholder: being written by the layers helper
import torch.nn as nn
class Delay(nn.Module): pass
class PrintShapeModule(nn.Module): pass
class VotingLayer(nn.Module): pass
