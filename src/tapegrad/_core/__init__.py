"""The core layer: dtypes, devices, grad mode, the graph's nodes and the op registry's row type,
node-level recording, and the compiled programs that compute pending values. Nothing here knows
the `Tensor` class: every module above builds on these.
"""
