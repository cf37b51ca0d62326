"""The engine: layers with forward, VJP and R-op side by side, losses, init schemes and ``Net``."""
from .layers import (GELU, AvgPool, Conv1d, Conv2d, Dense, Flatten, Gate, Identity, Layer, LeakyReLU,
                     MaxPool, ReLU, Sigmoid, Tanh)
from .losses import MSE, CrossEntropy
from .net import Net, ParamSpec
from .init import SCHEMES

__all__ = ["Net", "ParamSpec", "Layer", "Dense", "Conv1d", "Conv2d", "MaxPool", "AvgPool", "Flatten", "Gate",
           "ReLU", "LeakyReLU", "Tanh", "Sigmoid", "GELU", "Identity", "CrossEntropy", "MSE", "SCHEMES"]
