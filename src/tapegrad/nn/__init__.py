"""`tapegrad.nn`: PyTorch's `Module`, `Parameter`, layers, losses, `init` and `utils`."""
from . import functional, init, modules, parameter, utils
from .modules import *  # noqa: F401,F403  (the layer classes; the list is modules.__all__)
from .modules import __all__ as _modules_all
from .parameter import Parameter

__all__ = ["Parameter", "functional", "init", "modules", "parameter", "utils", *_modules_all]
