"""The functions layer: PyTorch's tensor vocabulary, one module per topic. Each op's registry row,
its function and its `Tensor` method bindings (`@method`) sit together in its topic's module."""
