"""Training: the trainer (strategy, step, checkpoints, logs) and its pieces.

`train(cfg, model_dir)` is the entry point; see `trainer.py` for the model directory
it fills, `distribution.py` for one device / many devices / many machines,
`adversarial.py` for FGM, `step.py` for the training step; for fault tolerance,
`checkpoints.py` (checkpoints with a manifest, checked when loaded), `lock.py` (one
run per model directory), `stop.py` (SIGTERM/SIGINT) and `storage.py` (the space
check and failure messages of the model directory, whose files go through
`videotag.files` on any file system `tf.io.gfile` reaches).
"""

from videotag.training.trainer import train

__all__ = ["train"]
