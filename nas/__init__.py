"""npu-nas: hardware-aware NAS for INT8 x3 super-resolution networks on mobile NPUs.

The top-level package is light: it imports no TensorFlow. The rooms are ``nas.space`` (specs, spaces, zoo),
``nas.model`` (Keras builder and exact fusion), ``nas.export`` (INT8 TFLite export and the NPU check),
``nas.data`` (images) and ``nas.cli``.
"""

from nas.errors import NasError
from nas.space import ArchSpec

__all__ = ["ArchSpec", "NasError", "__version__"]
__version__ = "0.1.0"
