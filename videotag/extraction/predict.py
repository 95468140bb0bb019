"""Predicting straight from video files: extraction, then the model.

The videos are extracted with the settings the training records were made with
(their `extraction.yaml`) into a temporary folder (or `features_dir`, which keeps
them and makes a rerun skip what is done), then scored by a trained model directory
or an exported SavedModel. Rows carry the video's path, as the VideoTag JSON does.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

from videotag.errors import ConfigError, VideotagError
from videotag.extraction.config import ExtractionConfig
from videotag.extraction.inputs import list_videos
from videotag.extraction.pipeline import SHARD_PREFIX, Summary, extract


def _match_model_config(cfg: ExtractionConfig, model_dir: str) -> None:
    """Takes the model's id key; fails when its features differ from the extraction's."""
    from videotag import config as config_lib
    from videotag.training.trainer import CONFIG_FILE

    path = Path(model_dir) / CONFIG_FILE
    if not path.is_file():
        return  # load_trained reports it
    data = config_lib.load(str(path)).data
    cfg.id_key = data.id_key
    if list(data.feature_names) != list(cfg.feature_names) or list(data.feature_sizes) != list(
            cfg.feature_sizes):
        raise ConfigError(
            f"the model in {model_dir} takes features {data.feature_names} of sizes "
            f"{data.feature_sizes}, the extraction settings give {cfg.feature_names} of sizes "
            f"{cfg.feature_sizes}: use the extraction.yaml of the model's training records")


def predict_videos(inputs: Sequence[str], cfg: ExtractionConfig, model_dir: Optional[str] = None,
                   saved_model: Optional[str] = None, top_k: int = 20, batch_size: int = 256,
                   features_dir: Optional[str] = None,
                   progress: bool = True, segments: bool = False,
                   checkpoint: Optional[str] = None) -> Tuple[List, Summary]:
    """Top-k classes of every video of `inputs` (folders, files, manifests).

    Args:
        inputs: the videos (see `videotag.extraction.inputs`).
        cfg: extraction settings (those of the model's training records).
        model_dir / saved_model: exactly one: a trained model directory or a
            SavedModel version folder.
        top_k: classes per video.
        batch_size: videos per model batch.
        features_dir: keep the extracted records here (default: a temporary folder).
        progress: show the extraction's progress bar.
        segments: predict every segment too (`SegmentPrediction` rows).
        checkpoint: with `model_dir`: which of its weights (best, latest, a checkpoint
            or weights file; default its model.keras).

    Returns:
        (rows, summary): `Prediction` rows `(path, [(class_id, class_name,
        probability), ...], category)` (with `segments`: `SegmentPrediction` rows) in
        input order, for every video extracted without error; the extraction summary.
    """
    from videotag.inference import (
        predict_from_model_dir,
        predict_from_saved_model,
        predict_segments_from_model_dir,
        predict_segments_from_saved_model,
    )

    if bool(model_dir) == bool(saved_model):
        raise VideotagError("give exactly one of a model directory and a SavedModel")
    if checkpoint and not model_dir:
        raise VideotagError("a checkpoint picks the weights of a model directory, not of a "
                            "SavedModel")
    if model_dir:
        _match_model_config(cfg, model_dir)
    items, _ = list_videos(inputs, with_labels=False)
    order = {item.video_id: (i, item.path) for i, item in enumerate(items)}
    with tempfile.TemporaryDirectory(prefix="videotag-features-") as tmp:
        folder = features_dir or tmp
        summary = extract(cfg, inputs, folder, progress=progress, with_labels=False)
        print(summary.text(), file=sys.stderr)
        if not summary.extracted and not summary.skipped:
            return [], summary
        pattern = str(Path(folder) / f"{SHARD_PREFIX}-*.tfrecord")
        if model_dir:
            by_dir = predict_segments_from_model_dir if segments else predict_from_model_dir
            rows = by_dir(model_dir, pattern, top_k, batch_size, checkpoint=checkpoint)
        else:
            by_export = (predict_segments_from_saved_model if segments
                         else predict_from_saved_model)
            rows = by_export(saved_model, pattern, top_k, batch_size)
        found = sorted((order[row[0]][0], i, row._replace(video_id=order[row[0]][1]))
                       for i, row in enumerate(rows) if row[0] in order)
    return [row for _, _, row in found], summary
