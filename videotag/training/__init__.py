"""Training: the trainer (strategy, step, checkpoints, logs) and its pieces.

`train(cfg, model_dir)` is the entry point; see `trainer.py` for the model directory
it fills, `distribution.py` for one device / many devices / many machines,
`adversarial.py` for FGM, `step.py` for the training step, `checkpoints.py` for
fault tolerance.
"""

from videotag.training.trainer import train

__all__ = ["train"]
