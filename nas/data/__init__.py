"""Image data: sources (embedded photographs, DIV2K, folders), MATLAB-compatible bicubic resize, colour
conversions, and the seeded patch sampler and input pipeline of training."""

from nas.data._images import EMBEDDED_NAMES, IMAGE_SUFFIXES, embedded_images, list_images, read_image
from nas.data._patches import PatchSampler, make_dataset
from nas.data._resize import imresize, modcrop, rgb_to_y
from nas.data._fetch import extract_zip, fetch_div2k
from nas.data._source import (EMBEDDED_VALID, ImageCache, ImagePair, ImageSet, default_valid_source, describe_source,
                              div2k_dirs, load_images)

__all__ = [
    "embedded_images",
    "list_images",
    "read_image",
    "load_images",
    "describe_source",
    "default_valid_source",
    "ImageCache",
    "ImagePair",
    "ImageSet",
    "PatchSampler",
    "make_dataset",
    "imresize",
    "modcrop",
    "rgb_to_y",
    "div2k_dirs",
    "fetch_div2k",
    "extract_zip",
    "EMBEDDED_NAMES",
    "EMBEDDED_VALID",
    "IMAGE_SUFFIXES",
]
