"""Tensor functions shared by the layers (Keras ops, any backend): the masked softmax
over frames and the L2 normalisation."""

from keras import ops


def masked_softmax(scores, mask=None, axis=1):
    """Softmax over `axis` restricted to the valid entries; exactly 0 on padding.

    Args:
        scores: float [B, T, ...].
        mask: optional bool [B, T] (or of the shape of `scores`); True for valid
            frames.
        axis: the frame axis.
    Returns:
        float32 weights of the shape of `scores`, summing to 1 over the valid frames
        (all zero for a video without valid frames).
    """
    scores = ops.cast(scores, "float32")
    if mask is None:
        return ops.softmax(scores, axis=axis)
    valid = ops.cast(mask, "bool")
    while len(valid.shape) < len(scores.shape):
        valid = ops.expand_dims(valid, -1)
    valid = ops.broadcast_to(valid, ops.shape(scores))
    weights = ops.softmax(ops.where(valid, scores, -1e9), axis=axis)
    return ops.where(valid, weights, 0.0)


def l2_normalize(x, axis=-1):
    """`x / max(||x||_2, 1e-6)` along `axis` (zero vectors stay zero)."""
    norm = ops.sqrt(ops.maximum(ops.sum(ops.square(x), axis=axis, keepdims=True), 1e-12))
    return x / norm
