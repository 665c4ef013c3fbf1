"""Perception backends: pose, person mask, DensePose, human parsing (pure torch/numpy)."""
