"""Loading a trained model directory: its final model, or the checkpoint asked for.

The names of a model directory's files live here (`trainer.py` describes the
layout); `load_trained` gives (config, model) from `model.keras` or a checkpoint
(`--checkpoint=best|latest|PATH` of eval, predict, export and embed), on any file
system `tf.io.gfile` reaches, checkpoints checked against their manifests.
"""

from __future__ import annotations

from typing import Optional

import keras
import tensorflow as tf

from videotag.config import Config, from_dict
from videotag.config import engine as config_engine
from videotag.errors import ModelError
from videotag.filesystem import join, read_bytes
from videotag.registry import build_model
from videotag.training.checkpoints import CheckpointStore
from videotag.training.ema import keeps_average
from videotag.training.freeze import freeze_configured
from videotag.training.selection import BEST_DIR
from videotag.training.step import make_optimizer

CONFIG_FILE = "config.yaml"
MODEL_FILE = "model.keras"
METRICS_FILE = "metrics.json"
CHECKPOINT_DIR = "checkpoints"


def read_config(path: str) -> Config:
    """The config saved at `path` (`config.yaml` of a model directory, any file
    system).

    Raises:
        ConfigError: not valid YAML, or keys this videotag does not know.
    """
    return from_dict(config_engine.parse_yaml(read_bytes(path).decode("utf-8"), path))


def load_trained(model_dir: str, checkpoint: Optional[str] = None):
    """(config, model) of a trained model directory (local or any file system).

    Args:
        model_dir: the run's directory.
        checkpoint: None: `model.keras` when present, else the newest intact
            checkpoint (a damaged newer one is reported on stderr and passed
            over); "latest": the newest intact checkpoint; "best": the best
            checkpoint (`train.keep_best`); or the path of a checkpoint directory
            (checked against its manifest) or of a `.weights.h5` / `.keras`
            weights file. A checkpoint of a run with `train.ema_decay` gives the
            moving averages of its weights (what validation scored and what
            model.keras holds); a weights file gives its weights as they are.

    Raises:
        ModelError: the directory holds no config, or not the weights asked for.
        StorageError: the checkpoints are all damaged, or `checkpoint` is.
    """
    root = str(model_dir)
    config_path = join(root, CONFIG_FILE)
    if not tf.io.gfile.exists(config_path):
        raise ModelError(f"{model_dir}: no {CONFIG_FILE}; is this a videotag model directory?")
    cfg = read_config(config_path)
    if checkpoint is None and tf.io.gfile.exists(join(root, MODEL_FILE)):
        return cfg, keras.saving.load_model(join(root, MODEL_FILE))
    model = build_model(cfg)
    optimizer = None
    if cfg.train.ema_decay:  # the averages are optimizer variables: restore both
        freeze_configured(model, cfg)  # the optimizer's variables follow these
        optimizer = make_optimizer(cfg)
        optimizer.build(model.trainable_variables)
    if checkpoint in (None, "latest", "best"):
        path, _ = _store(root, checkpoint).restore_latest(model, optimizer)
        if path is None:
            raise ModelError(_missing(model_dir, checkpoint))
    else:
        path = str(checkpoint)
        if not tf.io.gfile.exists(path):
            raise ModelError(f"checkpoint {checkpoint} does not exist (give best, latest, a "
                             "checkpoint directory or a .weights.h5 / .keras weights file)")
        if tf.io.gfile.isdir(path):
            CheckpointStore.restore(path, model, optimizer)
        else:
            model.load_weights(path)
            optimizer = None
    if optimizer is not None and keeps_average(optimizer) \
            and int(optimizer.iterations.numpy()) > 0:
        optimizer.finalize_variable_values(model.trainable_variables)
    return cfg, model


def checkpoint_path(model_dir: str, checkpoint: Optional[str] = None) -> str:
    """The checkpoint that `checkpoint` names in `model_dir` (see `load_trained`;
    None is "latest" here; the newest by name, not checked).

    Raises:
        ModelError: there is no such checkpoint.
    """
    if checkpoint in (None, "latest", "best"):
        path = _store(str(model_dir), checkpoint).latest()
        if path is None:
            raise ModelError(_missing(model_dir, checkpoint))
        return path
    if not tf.io.gfile.exists(str(checkpoint)):
        raise ModelError(f"checkpoint {checkpoint} does not exist (give best, latest, a "
                         "checkpoint directory or a .weights.h5 / .keras weights file)")
    return str(checkpoint)


def _store(root: str, checkpoint: Optional[str]) -> CheckpointStore:
    directory = join(root, CHECKPOINT_DIR)
    if checkpoint == "best":
        directory = join(directory, BEST_DIR)
    return CheckpointStore(directory, writer=False)


def _missing(model_dir: str, checkpoint: Optional[str]) -> str:
    if checkpoint == "best":
        return (f"{model_dir}: no best checkpoint in {CHECKPOINT_DIR}/{BEST_DIR}/ (train with "
                "train.keep_best set)")
    if checkpoint is None:
        return f"{model_dir}: no {MODEL_FILE} and no checkpoint in {CHECKPOINT_DIR}/"
    return f"{model_dir}: no checkpoint in {CHECKPOINT_DIR}/"
