"""Loading a trained model directory: its final model, or the checkpoint asked for.

The names of a model directory's files live here (`trainer.py` describes the
layout); `load_trained` gives (config, model) from `model.keras` or a checkpoint
(`--checkpoint=best|latest|PATH` of eval, predict, export and embed).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import keras

from videotag.errors import ModelError
from videotag.registry import build_model
from videotag.training.checkpoints import CheckpointStore
from videotag.training.ema import keeps_average
from videotag.training.freeze import freeze_layers
from videotag.training.selection import BEST_DIR
from videotag.training.step import make_optimizer

CONFIG_FILE = "config.yaml"
MODEL_FILE = "model.keras"
METRICS_FILE = "metrics.json"
CHECKPOINT_DIR = "checkpoints"


def load_trained(model_dir: str, checkpoint: Optional[str] = None):
    """(config, model) of a trained model directory.

    Args:
        model_dir: the run's directory.
        checkpoint: None: `model.keras` when present, else the newest checkpoint;
            "latest": the newest checkpoint; "best": the best checkpoint
            (`train.keep_best`); or the path of a checkpoint directory or of a
            `.weights.h5` file. A checkpoint of a run with `train.ema_decay` gives
            the moving averages of its weights (what validation scored and what
            model.keras holds); a `.weights.h5` file gives its weights as they are.

    Raises:
        ModelError: the directory holds no config, or not the weights asked for.
    """
    from videotag import config as config_lib

    root = Path(model_dir)
    if not (root / CONFIG_FILE).is_file():
        raise ModelError(f"{model_dir}: no {CONFIG_FILE}; is this a videotag model directory?")
    cfg = config_lib.load(str(root / CONFIG_FILE))
    if checkpoint is None and (root / MODEL_FILE).is_file():
        return cfg, keras.saving.load_model(root / MODEL_FILE)
    path = checkpoint_path(model_dir, checkpoint)
    model = build_model(cfg)
    if not path.is_dir():
        model.load_weights(str(path))
    elif cfg.train.ema_decay:  # the averages are optimizer variables: restore both
        freeze_layers(model, cfg.train.freeze)  # the optimizer's variables follow these
        optimizer = make_optimizer(cfg)
        optimizer.build(model.trainable_variables)
        CheckpointStore.restore(path, model, optimizer)
        if keeps_average(optimizer) and int(optimizer.iterations.numpy()) > 0:
            optimizer.finalize_variable_values(model.trainable_variables)
    else:
        CheckpointStore.restore(path, model)
    return cfg, model


def checkpoint_path(model_dir: str, checkpoint: Optional[str] = None) -> Path:
    """The checkpoint that `checkpoint` names in `model_dir` (see `load_trained`;
    None is "latest" here).

    Raises:
        ModelError: there is no such checkpoint.
    """
    root = Path(model_dir) / CHECKPOINT_DIR
    if checkpoint in (None, "latest", "best"):
        store = CheckpointStore(root / BEST_DIR if checkpoint == "best" else root, writer=False)
        path = store.latest()
        if path is None:
            raise ModelError(
                f"{model_dir}: no best checkpoint in {CHECKPOINT_DIR}/{BEST_DIR}/ (train with "
                "train.keep_best set)" if checkpoint == "best" else
                f"{model_dir}: no {MODEL_FILE} and no checkpoint in {CHECKPOINT_DIR}/"
                if checkpoint is None else f"{model_dir}: no checkpoint in {CHECKPOINT_DIR}/")
        return path
    path = Path(checkpoint)
    if not path.exists():
        raise ModelError(f"checkpoint {checkpoint} does not exist (give best, latest, a "
                         "checkpoint directory or a .weights.h5 file)")
    return path
