"""`tapegrad.nn`: PyTorch's `Module`, `Parameter`, layers, losses, `init` and `utils`."""
from . import functional, init, modules, parameter, utils
from .modules import (
    AdaptiveAvgPool1d, AdaptiveAvgPool2d, AvgPool1d, AvgPool2d, BCELoss, BCEWithLogitsLoss,
    BatchNorm1d, BatchNorm2d, Bilinear, Conv1d, Conv2d, ConvTranspose2d, CrossEntropyLoss,
    Dropout, ELU, Embedding, Flatten, GELU, GRU, GroupNorm, Hardsigmoid, Hardswish, Hardtanh,
    HuberLoss, Identity, KLDivLoss, L1Loss, LSTM, LayerNorm, LeakyReLU, Linear, LogSoftmax,
    MSELoss, MaxPool1d, MaxPool2d, Mish, Module, ModuleDict, ModuleList, MultiheadAttention,
    NLLLoss, ParameterDict, ParameterList, RNN, RNNBase, ReLU, ReLU6, SELU, Sequential, SiLU,
    Sigmoid, SmoothL1Loss, Softmax, Softplus, Softsign, Tanh, TransformerEncoder,
    TransformerEncoderLayer, Unflatten,
)
from .parameter import Parameter

__all__ = ["Parameter", "functional", "init", "modules", "parameter", "utils", *modules.__all__]
