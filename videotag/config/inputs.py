"""The `model.input` section: how a model normalises its dequantized frames.

Reference models differ here, in training, evaluation and serving alike: the YT8M
starter code and LOUPE L2-normalise every frame of all features concatenated; the
NeXtVLAD authors rescale rgb by the PCA eigenvalues of YT8M's features; PaddleVideo
and TRN feed the dequantized features as they are. Each model's config class states
its reference's default; `videotag.layers.FrameNormalization` computes it inside the
model, so an exported model normalises as it was trained.
"""

from __future__ import annotations

from dataclasses import dataclass

from videotag.config import engine
from videotag.errors import ConfigError

NORMALIZATIONS = ("none", "l2", "eigenvalues")


@dataclass
class InputConfig:
    """Input normalisation of the frames.

    Attributes:
        normalization: "none" (the dequantized features as they are), "l2" (each
            frame of all features concatenated divided by its L2 norm: the YT8M
            starter code's and LOUPE's `tf.nn.l2_normalize` over rgb+audio) or
            "eigenvalues" (the first feature, rgb, shifted by -4/512 and multiplied
            per dimension by sqrt(eigenvalue) + 1e-4, undoing YT8M's PCA whitening;
            the other features as they are: the NeXtVLAD authors' train.py).
        eigenvalues_file: for "eigenvalues": the `eigenvals.npy` of YT8M's PCA
            (`yt8m_pca.tgz` of the YT8M feature-extraction release: [2048, 1], the
            first `data.feature_sizes[0]` values are used). Read when the model is
            built; the values are stored in the model.
    """

    normalization: str = "none"
    eigenvalues_file: str = ""

    def validate(self, path: str = "model.input") -> None:
        """Checks the normalisation name (raises ConfigError naming the key)."""
        engine.check_choice(f"{path}.normalization", self.normalization, NORMALIZATIONS)
        if self.normalization != "eigenvalues" and self.eigenvalues_file:
            raise ConfigError(f"config key '{path}.eigenvalues_file' is set but "
                              f"'{path}.normalization' is '{self.normalization}'; "
                              "set the normalization to 'eigenvalues' or clear the file")
