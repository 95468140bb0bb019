"""Flags that choose the model of eval, predict, export and embed: `--checkpoint`
(which weights of a model directory) and `--ensemble` (several models averaged).

Each command calls these from its `define_flags()`, so that the flags are listed
under the command in `videotag <command> --help`.
"""

from __future__ import annotations

from typing import List, Optional

from absl import flags

from videotag.errors import ConfigError

FLAGS = flags.FLAGS


def define_checkpoint_flag(module_name: str) -> None:
    """`--checkpoint`: best, latest or a checkpoint path (default model.keras)."""
    flags.DEFINE_string(
        "checkpoint", None, "Weights of the model directory: best (train.keep_best), latest, or "
        "the path of a checkpoint directory or .weights.h5 / .keras weights file; default its "
        "model.keras (the final weights).", module_name=module_name)


def define_ensemble_flags(module_name: str) -> None:
    """`--ensemble`, `--ensemble_weights` and `--ensemble_embedding`."""
    flags.DEFINE_bool(
        "ensemble", False, "Average several models: --ensemble A B C, each a model directory "
        "or an exported SavedModel version folder; they must share classes.",
        module_name=module_name)
    flags.DEFINE_list(
        "ensemble_weights", [], "Weights of the ensemble's members, in their order "
        "(e.g. 2,1); default equal. Probabilities: sum w_i p_i / sum w_i.",
        module_name=module_name)
    flags.DEFINE_enum(
        "ensemble_embedding", "concat", ["concat", "mean"], "The ensemble's embedding: the "
        "members' embeddings concatenated in order, or their weighted mean (one size).",
        module_name=module_name)


def ensemble_members(argv: List[str], exclusive: Optional[List[str]] = None) -> List[str]:
    """The members given after --ensemble (the command's positional arguments).

    Raises:
        ConfigError: fewer than two, or a flag that does not go with --ensemble.
    """
    members = argv[1:]
    if len(members) < 2:
        raise ConfigError(f"--ensemble takes two or more models: --ensemble A B [C ...] "
                          f"(got {members or 'none'})")
    for name in exclusive or []:
        if getattr(FLAGS, name):
            raise ConfigError(f"--{name} does not go with --ensemble (its members are given "
                              "after it)")
    return members


def ensemble_weights() -> Optional[List[float]]:
    """--ensemble_weights as floats (None: equal).

    Raises:
        ConfigError: a weight that is not a number.
    """
    if not FLAGS.ensemble_weights:
        return None
    try:
        return [float(w) for w in FLAGS.ensemble_weights]
    except ValueError:
        raise ConfigError(f"--ensemble_weights takes numbers, got "
                          f"{','.join(FLAGS.ensemble_weights)}") from None


def load_ensemble_from_flags(argv: List[str], exclusive: Optional[List[str]] = None):
    """(model, config, members) of the ensemble the flags and arguments give."""
    from videotag.inference.ensemble import load_ensemble

    members = ensemble_members(argv, exclusive)
    return load_ensemble(members, ensemble_weights(), FLAGS.ensemble_embedding,
                         FLAGS.checkpoint)
