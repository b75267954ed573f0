"""Image data: sources (embedded photographs, folders), MATLAB-compatible bicubic resize, colour conversions."""

from nas.data._images import EMBEDDED_NAMES, IMAGE_SUFFIXES, embedded_images, list_images, read_image
from nas.data._resize import imresize, modcrop, rgb_to_y

__all__ = [
    "embedded_images",
    "list_images",
    "read_image",
    "imresize",
    "modcrop",
    "rgb_to_y",
    "EMBEDDED_NAMES",
    "IMAGE_SUFFIXES",
]
