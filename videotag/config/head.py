"""The `model.head` section: which outputs a model trains and its `tags` head.

`videotag.layers.heads.build_head` builds the head this section describes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List

from videotag.config import engine
from videotag.errors import ConfigError

HEAD_TYPES = ("logistic", "moe", "hmc")
TASKS = ("tags", "category")
HMC_LEVELS = (1, 2, 3)
TAGS_LOSSES = ("mean", "sum")


@dataclass
class HeadConfig:
    """Classifier head.

    Attributes:
        type: the `tags` head: "logistic", "moe" (mixture of experts, YT8M
            style) or "hmc" (seed 000: global and local branches averaged).
        num_mixtures: experts per class for "moe" (the dummy expert not counted).
        l2_penalty: L2 regularisation of the head's weights: `l2_penalty *
            sum(w ** 2)` (Keras's `L2`; TF-slim's `l2_regularizer(s)` is `s/2 *
            sum(w ** 2)`, so a reference's slim value is halved here).
        l2_bias: "logistic": regularise the bias too (the NeXtVLAD authors' head).
        moe_gate_bias: "moe": the gates have a bias. The starter code's and
            LOUPE's gates have none (false); videotag 0.1 had one.
        moe_prob_gating: "moe": gate the output probabilities,
            `p * sigmoid(bn(p W))` with W [C, C] (LOUPE's `moe_prob_gating`, on
            in its published commands).
        tags_loss: the `tags` cross-entropy over the classes: "mean" or "sum" (the
            YT8M starter code's `CrossEntropyLoss` and its descendants sum over the
            classes, which scales the data term against the L2 penalties and the
            gradient clipping by the number of classes).
        tasks: the outputs to train: "tags" (multi-label, sigmoid) and/or
            "category" (multi-class softmax over data.num_categories).
        tags_weight: loss weight of `tags`.
        category_weight: loss weight of `category`.
        hmc_hidden_size: "hmc": units of the first two global levels (the third
            and the local branches have half).
        hmc_local_levels: "hmc": the global levels (1-3) that feed a local branch
            (seed 000: [3]).
        hmc_local_weight: "hmc": weight of the local branches' mean probability;
            the global branch gets 1 - weight (seed 000: 0.5, the average).
        hmc_dropout: "hmc": dropout rate after each hidden level.
    """

    type: str = "logistic"
    num_mixtures: int = 2
    l2_penalty: float = 1e-8
    l2_bias: bool = False
    moe_gate_bias: bool = False
    moe_prob_gating: bool = False
    tags_loss: str = "mean"
    tasks: List[str] = field(default_factory=lambda: ["tags"])
    tags_weight: float = 1.0
    category_weight: float = 1.0
    hmc_hidden_size: int = 1024
    hmc_local_levels: List[int] = field(default_factory=lambda: [3])
    hmc_local_weight: float = 0.5
    hmc_dropout: float = 0.0

    def validate(self, path: str = "model.head") -> None:
        """Checks the type, the tasks and, for "hmc", its keys (raises ConfigError
        naming the key). Whether `data.num_categories` allows the category task is
        `Config.validate`'s rule."""
        engine.check_choice(f"{path}.type", self.type, HEAD_TYPES)
        engine.check_choice(f"{path}.tags_loss", self.tags_loss, TAGS_LOSSES)
        tasks = self.tasks
        if not tasks or any(t not in TASKS for t in tasks) or len(set(tasks)) != len(tasks):
            raise ConfigError(f"config key '{path}.tasks' is {tasks}; give one or both of "
                              f"{', '.join(TASKS)}")
        if self.type == "hmc":
            self.validate_hmc(path)

    def validate_hmc(self, path: str = "model.head") -> None:
        """The rules of the "hmc" head's keys."""
        if self.hmc_hidden_size < 2:
            raise ConfigError(f"config key '{path}.hmc_hidden_size' must be at least 2")
        levels = self.hmc_local_levels
        if not levels or any(x not in HMC_LEVELS for x in levels):
            raise ConfigError(f"config key '{path}.hmc_local_levels' is {levels}; give one "
                              "or more of the levels 1, 2, 3")
        if not 0.0 <= self.hmc_local_weight <= 1.0:
            raise ConfigError(f"config key '{path}.hmc_local_weight' must be in [0, 1]")
