"""Putting pixels together: the blend, inpainting, the face finder and paste."""
