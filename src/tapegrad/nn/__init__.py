"""`tapegrad.nn`: PyTorch's `Module`, `Parameter`, layers, losses, `init` and `utils`."""
from . import functional, init, modules, parallel, parameter, utils
from .modules import (
    AdaptiveAvgPool1d, AdaptiveAvgPool2d, AvgPool1d, AvgPool2d, BCELoss, BCEWithLogitsLoss,
    BatchNorm1d, BatchNorm2d, Bilinear, CircularPad1d, CircularPad2d, ConstantPad1d, ConstantPad2d,
    Conv1d, Conv2d, ConvTranspose2d, CrossEntropyLoss, Dropout, Dropout1d, Dropout2d, ELU,
    Embedding, Flatten, GELU, GLU, GRU, GRUCell, GroupNorm, Hardsigmoid, Hardswish, Hardtanh,
    HuberLoss, Identity, KLDivLoss, L1Loss, LSTM, LSTMCell, LayerNorm, LeakyReLU, Linear,
    LogSigmoid, LogSoftmax, MSELoss, MaxPool1d, MaxPool2d, Mish, Module, ModuleDict, ModuleList,
    MultiheadAttention, NLLLoss, PReLU, ParameterDict, ParameterList, RNN, RNNBase, RNNCell,
    RNNCellBase, ReLU, ReLU6, ReflectionPad1d, ReflectionPad2d, ReplicationPad1d, ReplicationPad2d,
    SELU, Sequential, SiLU, Sigmoid, SmoothL1Loss, Softmax, Softmin, Softplus, Softsign, Tanh,
    Transformer, TransformerDecoder, TransformerDecoderLayer, TransformerEncoder,
    TransformerEncoderLayer, Unflatten, Upsample, ZeroPad1d, ZeroPad2d,
)
from .modules import (
    CELU, AdaptiveMaxPool1d, AdaptiveMaxPool2d, AdaptiveMaxPool3d, AvgPool3d, Conv3d,
    ConvTranspose1d, ConvTranspose3d, InstanceNorm1d, InstanceNorm2d, InstanceNorm3d, MaxPool3d,
    RMSNorm, Threshold,
)
from .modules import MaxUnpool1d, MaxUnpool2d, MaxUnpool3d
from .parallel import DataParallel
from .parameter import Parameter

__all__ = ["DataParallel", "Parameter", "functional", "init", "modules", "parallel", "parameter", "utils",
           *modules.__all__]
