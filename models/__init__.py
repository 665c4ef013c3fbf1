"""Pure torch + numpy: networks, weight registry and loading, perception and warp backends.

No ComfyUI imports here, and relative imports only (ComfyUI has its own top-level `models`)."""
