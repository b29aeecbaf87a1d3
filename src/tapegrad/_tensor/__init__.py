"""The tensor layer: the `Tensor` class (storage, metadata, autograd attributes, conversions to
Python and numpy), tensors from data, applying an op to tensors, views, in-place updates, random
generators, and the decorator that binds functions of the layers above as methods.
"""
