"""Dance Reenact: single-shot freestyle dance reenactment as ComfyUI nodes.

ComfyUI imports this file from the pack's folder and reads NODE_CLASS_MAPPINGS. Importing it
loads no weights and downloads nothing.
"""

if __package__:  # ComfyUI, pip and the tests import the pack as a package
    from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS
    from .nodes.runtime import register_memory_hooks, register_model_folder

    register_model_folder()
    register_memory_hooks()
else:  # pytest collecting this file from a checkout whose folder name has a dot in it
    NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS = {}, {}

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
