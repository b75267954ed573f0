"""Training batches: a seeded patch sampler with the eight flips/rotations, and the tf.data pipeline around it.

Batch ``i`` depends only on ``(seed, i)``: a training run that resumes at step ``i`` sees exactly the batches it
would have seen, and the pipeline can prepare batches in parallel without losing determinism.
"""

from __future__ import annotations

import numpy as np

from nas.data._source import ImageSet
from nas.errors import DataError

__all__ = ["PatchSampler", "make_dataset"]


class PatchSampler:
    """Random aligned LR/HR patch pairs from an :class:`ImageSet`.

    ``patch`` is the LR patch side (the HR patch is ``patch * scale``). Every image is drawn equally often (then a
    patch position uniformly within it), as EDSR and BasicSR sample: with images of very different sizes, drawing
    by area lets the largest dominate (in the embedded set, ``retina``'s black background took 56% of the patches
    when drawn by area, and the anchor alone is already exact on 46% of its pixels). DIV2K's images are of similar
    sizes, where the two rules hardly differ.
    """

    def __init__(self, images: ImageSet, patch: int = 48, batch: int = 16, seed: int = 0, augment: bool = True):
        if patch < 1 or batch < 1:
            raise DataError(f"patch size and batch size must be positive (got {patch} and {batch})")
        if len(images) == 0:
            raise DataError(f"no images to sample patches from ({images.source})")
        small = [f"{p.name} ({p.lr.shape[1]}x{p.lr.shape[0]})" for p in images.pairs
                 if p.lr.shape[0] < patch or p.lr.shape[1] < patch]
        if small:
            raise DataError(f"{len(small)} image(s) in {images.source} are smaller than the {patch}x{patch} LR patch "
                            f"({patch * images.scale}x{patch * images.scale} HR): {', '.join(small[:5])}"
                            + (" ..." if len(small) > 5 else ""))
        self.images = images
        self.scale = images.scale
        self.patch = int(patch)
        self.batch_size = int(batch)
        self.seed = int(seed)
        self.augment = bool(augment)
        self._p = np.full(len(images.pairs), 1.0 / len(images.pairs))

    def batch(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        """Batch number ``step``: (LR ``B x p x p x 3``, HR ``B x ps x ps x 3``), float32 pixels in [0, 255]."""
        rng = np.random.default_rng((self.seed, int(step)))
        p, s = self.patch, self.scale
        lr = np.empty((self.batch_size, p, p, 3), np.float32)
        hr = np.empty((self.batch_size, p * s, p * s, 3), np.float32)
        which = rng.choice(len(self._p), size=self.batch_size, p=self._p)
        for b, i in enumerate(which):
            pair = self.images.pairs[i]
            y = int(rng.integers(0, pair.lr.shape[0] - p + 1))
            x = int(rng.integers(0, pair.lr.shape[1] - p + 1))
            lo = pair.lr[y:y + p, x:x + p]
            hi = pair.hr[y * s:(y + p) * s, x * s:(x + p) * s]
            if self.augment:
                k = int(rng.integers(0, 8))
                lo, hi = _dihedral(lo, k), _dihedral(hi, k)
            lr[b], hr[b] = lo, hi
        return lr, hr


def _dihedral(a: np.ndarray, k: int) -> np.ndarray:
    """One of the eight flips/rotations of an H x W x C array (k in 0..7; 0 is the identity)."""
    if k & 4:
        a = a.transpose(1, 0, 2)
    if k & 1:
        a = a[:, ::-1]
    if k & 2:
        a = a[::-1]
    return a


def make_dataset(sampler: PatchSampler, start: int, stop: int, parallel: int | None = None):
    """A ``tf.data.Dataset`` of the batches ``start .. stop-1``, prepared ahead of training in parallel, in order."""
    import tensorflow as tf

    p, s, b = sampler.patch, sampler.scale, sampler.batch_size

    def load(i):
        lr, hr = tf.numpy_function(sampler.batch, [i], [tf.float32, tf.float32], stateful=False)
        lr.set_shape((b, p, p, 3))
        hr.set_shape((b, p * s, p * s, 3))
        return lr, hr

    par = tf.data.AUTOTUNE if parallel is None else parallel
    ds = tf.data.Dataset.range(int(start), int(stop)).map(load, num_parallel_calls=par, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)
