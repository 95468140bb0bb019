"""Training: the trainer (compile, fit, evaluate, checkpoint) and its pieces."""

from videotag.training.trainer import train

__all__ = ["train"]
