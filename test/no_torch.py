"""The first lines of a child process that stands in for an install without torch.

``BLOCK_TORCH`` is Python source: prepend it to a ``python -c`` script and every later
``import torch`` (or ``torch.*``) in that process raises ImportError, as on a robot where
only numpy, scipy, onnxruntime and ROS are installed.
"""

BLOCK_TORCH = r"""
import importlib.abc as _abc, sys as _sys

class _NoTorch(_abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "torch":
            raise ImportError(f"No module named {name!r} (this install has no torch)")
        return None

_sys.meta_path.insert(0, _NoTorch())
"""
