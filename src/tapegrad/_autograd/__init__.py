"""The autograd layer: the backward pass (replays of the graph under `jax.vjp`), and the one place
gradients land in `.grad`.
"""
