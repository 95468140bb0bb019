"""MIX_NEXTVLAD: a mixture of NeXtVLAD models trained with online knowledge
distillation (Lin et al. 2018, arXiv 1811.05014, section 4.3; the authors' 3rd place
in the 2nd YT8M challenge, GAP 0.88722 against 0.87846 for one NeXtVLAD).

The authors' code: linrongc/youtube-8m, nextvlad.py, `MixNeXtVladModel`, trained by
scripts/train_mix_nextvlad_final_submission.sh. Each of `mix_number` members is a
whole NeXtVLAD model (rgb and audio NeXtVLAD, dropout, hidden layer, SE context
gating) with its own logistic classifier; per video, weights over the members come
from its mean frame (`videotag.layers.MixtureWeights`); the mixture's logits are the
weighted sum of the members' logits, its prediction their sigmoid
(`videotag.layers.LogitMixture`). That prediction is the model's `tags`, in training,
evaluation and serving.

Training adds, as the authors' train.py does, each member's own loss on the labels
and the distillation term: the KL divergence from the mixture's softened class
distribution to each member's (`videotag.training.losses.loss_terms`). For
them the model also outputs `member_logits` [B, M, C] and `mixture_logits` [B, C].
"""

from dataclasses import dataclass

import keras
from keras import initializers, layers, regularizers

from videotag.config import engine
from videotag.errors import ConfigError
from videotag.layers import LogitMixture, MixtureWeights
from videotag.models.interface import MEMBER_LOGITS, MIXTURE_LOGITS, frame_inputs, video_outputs
from videotag.models.nextvlad import NeXtVLADConfig, nextvlad_embedding
from videotag.registry import register_model


@dataclass
class MixNeXtVLADConfig(NeXtVLADConfig):
    """MIX_NEXTVLAD hyper-parameters (defaults: the authors' final submission script).

    Every member has the NeXtVLAD hyper-parameters of `NeXtVLADConfig` (the
    authors' script: K=112, G=8, lambda=2, hidden 2048, gating reduction 16,
    dropout 0.5). `head` configures the members' logistic classifiers (its type
    must be logistic: the mixture mixes logits).

    Attributes:
        mix_number: M, the members (flag `mix_number`).
        cl_temperature: T of the softened distributions `softmax(logits / T)`
            of the distillation term (flag `cl_temperature`).
        cl_lambda: weight of the distillation term (flag `cl_lambda`).
    """

    name: str = "MIX_NEXTVLAD"
    cluster_size: int = 112
    gating_reduction: int = 16
    mix_number: int = 3
    cl_temperature: float = 3.0
    cl_lambda: float = 9.0

    def validate(self, path: str = "model") -> None:
        """Checks the mixture's keys and that the head is logistic (raises ConfigError)."""
        inherited = getattr(super(), "validate", None)
        if inherited is not None:
            inherited(path)
        engine.check_positive(path, self, ("mix_number", "cl_temperature"))
        engine.check_positive(path, self, ("cl_lambda",), strict=False)
        if "tags" not in self.head.tasks:
            raise ConfigError(f"config key '{path}.head.tasks' must have tags for {self.name}: "
                              "its members and distillation are trained on the tags")
        if self.head.type != "logistic":
            raise ConfigError(f"config key '{path}.head.type' must be logistic for "
                              f"{self.name}: the mixture mixes the members' logits (it is "
                              f"{self.head.type})")


@register_model("MIX_NEXTVLAD", MixNeXtVLADConfig)
def build_mix_nextvlad(cfg) -> keras.Model:
    """The mixture; outputs `tags` (the mixture's prediction), `embedding`
    (`LogitMixture`'s), `member_logits` and `mixture_logits` (for the loss), and
    `category` when asked (on the embedding)."""
    m, head = cfg.model, cfg.model.head
    inputs, frames, mask = frame_inputs(cfg)
    joined = layers.Concatenate(name="mixture_frames")(frames) if len(frames) > 1 else frames[0]
    weights = MixtureWeights(m.mix_number, slots=cfg.data.max_frames,
                             name="mixture_weights")(joined, mask=mask)
    reg = regularizers.L2(head.l2_penalty) if head.l2_penalty else None
    vectors, logits = [], []
    for i in range(m.mix_number):
        vector = nextvlad_embedding(m, cfg.data.feature_names, frames, mask, prefix=f"member{i}_")
        vectors.append(vector)
        logits.append(layers.Dense(
            cfg.data.num_classes, kernel_regularizer=reg,
            bias_regularizer=reg if head.l2_bias else None, name=f"member{i}_logits",
            kernel_initializer=initializers.VarianceScaling(2.0, "fan_in", "truncated_normal"),
        )(vector))
    tags, mixed, members, embedding = LogitMixture(name="mixture")(logits, vectors, weights)
    outputs = video_outputs(cfg, embedding,
                            tags=layers.Identity(name="tags", dtype="float32")(tags))
    outputs[MEMBER_LOGITS] = layers.Identity(name=MEMBER_LOGITS, dtype="float32")(members)
    outputs[MIXTURE_LOGITS] = layers.Identity(name=MIXTURE_LOGITS, dtype="float32")(mixed)
    return keras.Model(inputs, outputs, name="mix_nextvlad")
