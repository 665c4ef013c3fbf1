"""Dance Reenact: single-shot freestyle dance reenactment as ComfyUI nodes.

ComfyUI imports this file from the pack's folder and reads NODE_CLASS_MAPPINGS. Importing it
loads no weights and downloads nothing.
"""

from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS
from .nodes.runtime import register_memory_hooks, register_model_folder

register_model_folder()
register_memory_hooks()

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
