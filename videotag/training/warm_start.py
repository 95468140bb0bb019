"""Warm start (`train.init_from`): a new run begins from the weights of another.

Every weight of the new model whose path (Keras's `variable.path`, e.g.
`nextvlad_rgb/centers`, `tags/logits/kernel`) and shape match a weight of the
source is loaded from it; a weight whose path matches but whose shape differs
(a head with another number of classes) is skipped and keeps its fresh
initialisation, as does a weight the source does not have. Batch-norm moving
statistics are weights and are loaded like the rest. The optimizer starts anew.

The source is a model directory (its `model.keras`, else its newest checkpoint),
a checkpoint folder (`<model_dir>/checkpoints/ckpt-000000120`, or one under
`checkpoints/best/`) or a `.keras` file. A source trained with `train.ema_decay`
gives its averaged weights, the ones its evaluation uses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import keras
import numpy as np

from videotag.errors import ModelError


@dataclass
class WarmStart:
    """What a warm start did.

    Attributes:
        source: the directory, checkpoint or file the weights came from.
        loaded: paths of the weights loaded.
        skipped: (path, source shape, shape) of the weights whose shape differs.
        new: paths of the weights the source does not have (freshly initialised).
        unused: paths of the source's weights the model does not have.
        values: number of values loaded.
    """

    source: str
    loaded: List[str] = field(default_factory=list)
    skipped: List[Tuple[str, tuple, tuple]] = field(default_factory=list)
    new: List[str] = field(default_factory=list)
    unused: List[str] = field(default_factory=list)
    values: int = 0

    def report(self, limit: Optional[int] = None) -> str:
        """Lines for the user: counts, then the skipped and the new weights by path
        (at most `limit` lines of each)."""
        lines = [f"warm start from {self.source}: loaded {len(self.loaded)} weights "
                 f"({self.values:,} values), skipped {len(self.skipped)} (shape differs), "
                 f"newly initialised {len(self.new)}, unused from the source {len(self.unused)}"]
        skipped = [f"  skipped {path}: {list(old)} in the source, {list(new)} here"
                   for path, old, new in self.skipped]
        new = [f"  newly initialised {path}" for path in self.new]
        for part in (skipped, new):
            shown = part if limit is None else part[:limit]
            lines += shown
            if len(part) > len(shown):
                lines.append(f"  ... and {len(part) - len(shown)} more")
        return "\n".join(lines)

    def to_dict(self) -> Dict:
        """JSON-ready form (for metrics.json)."""
        return {"source": self.source, "loaded": self.loaded,
                "skipped": [{"path": p, "source_shape": list(a), "shape": list(b)}
                            for p, a, b in self.skipped],
                "new": self.new, "unused": self.unused, "values": self.values}


def source_weights(source: str) -> Dict[str, np.ndarray]:
    """The weights of `source` by path.

    Raises:
        ModelError: `source` is none of a model directory, a checkpoint folder
            or a `.keras` file, or cannot be loaded.
    """
    from videotag.training.loading import CONFIG_FILE, load_trained

    path = Path(source)
    if path.is_file() and path.suffix == ".keras":
        try:
            model = keras.saving.load_model(path, compile=False)
        except (ValueError, OSError, TypeError) as exc:
            raise ModelError(f"{source}: not a loadable .keras file ({exc})") from None
    elif path.is_dir() and (path / CONFIG_FILE).is_file():
        _, model = load_trained(str(path))
    elif path.is_dir() and path.name.startswith("ckpt-"):
        # <model_dir>/checkpoints/ckpt-N or <model_dir>/checkpoints/best/ckpt-N
        roots = [p for p in path.parents[:3] if (p / CONFIG_FILE).is_file()]
        if not roots:
            raise ModelError(f"{source}: a checkpoint folder outside a model directory "
                             f"(no {CONFIG_FILE} above it)")
        _, model = load_trained(str(roots[0]), checkpoint=str(path))
    else:
        raise ModelError(f"train.init_from: {source} is not a model directory (with "
                         f"{CONFIG_FILE}), a checkpoint folder (ckpt-...) or a .keras file")
    return by_path(model)


def by_path(model: keras.Model) -> Dict[str, np.ndarray]:
    """{variable path: value} of every weight of `model`.

    Raises:
        ModelError: two weights share a path (the model cannot be matched by path).
    """
    weights: Dict[str, np.ndarray] = {}
    for variable in model.weights:
        if variable.path in weights:
            raise ModelError(f"model {model.name} has two weights at {variable.path}: "
                             "weights cannot be matched by path")
        weights[variable.path] = np.asarray(variable.numpy())
    return weights


def warm_start(model: keras.Model, source: str) -> WarmStart:
    """Loads into `model` every weight of `source` whose path and shape match.

    Call it after the model is built (under its strategy: assignments reach every
    replica) and before training.

    Returns:
        The `WarmStart` report.

    Raises:
        ModelError: the source cannot be read, or no weight matched (a model of
            another kind: nothing would be warm-started).
    """
    found = source_weights(source)
    result = WarmStart(source=str(source))
    seen = set()
    for variable in model.weights:
        path, shape = variable.path, tuple(variable.shape)
        if path in seen:
            raise ModelError(f"model {model.name} has two weights at {path}: weights "
                             "cannot be matched by path")
        seen.add(path)
        value = found.get(path)
        if value is None:
            result.new.append(path)
        elif tuple(value.shape) != shape:
            result.skipped.append((path, tuple(value.shape), shape))
        else:
            variable.assign(value.astype(variable.dtype))
            result.loaded.append(path)
            result.values += int(value.size)
    result.unused = sorted(set(found) - seen)
    if not result.loaded:
        raise ModelError(f"train.init_from: no weight of {source} matches the model "
                         f"{model.name} by path and shape (is it another kind of model?)")
    return result
