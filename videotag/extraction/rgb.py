"""Frame features from an ImageNet CNN of `keras.applications`.

The YT8M recipe: each frame resized to the network's input (InceptionV3: 299 x 299),
the network's own ImageNet preprocessing, and the globally average-pooled activations
of the last convolutional block (InceptionV3: 2048-d) as the frame's feature.
"""

from __future__ import annotations

import os

import numpy as np

from videotag.errors import ConfigError, ModelError

# name -> (keras.applications module holding preprocess_input, default input size)
BACKBONES = {
    "InceptionV3": ("inception_v3", 299),
    "InceptionResNetV2": ("inception_resnet_v2", 299),
    "Xception": ("xception", 299),
    "ResNet50": ("resnet", 224), "ResNet101": ("resnet", 224), "ResNet152": ("resnet", 224),
    "ResNet50V2": ("resnet_v2", 224), "ResNet101V2": ("resnet_v2", 224),
    "ResNet152V2": ("resnet_v2", 224),
    "MobileNet": ("mobilenet", 224), "MobileNetV2": ("mobilenet_v2", 224),
    "MobileNetV3Small": ("mobilenet_v3", 224), "MobileNetV3Large": ("mobilenet_v3", 224),
    "DenseNet121": ("densenet", 224), "DenseNet169": ("densenet", 224),
    "DenseNet201": ("densenet", 224),
    "EfficientNetB0": ("efficientnet", 224), "EfficientNetB1": ("efficientnet", 240),
    "EfficientNetB2": ("efficientnet", 260), "EfficientNetB3": ("efficientnet", 300),
    "EfficientNetB4": ("efficientnet", 380), "EfficientNetB5": ("efficientnet", 456),
    "EfficientNetB6": ("efficientnet", 528), "EfficientNetB7": ("efficientnet", 600),
    "EfficientNetV2B0": ("efficientnet_v2", 224), "EfficientNetV2B1": ("efficientnet_v2", 240),
    "EfficientNetV2B2": ("efficientnet_v2", 260), "EfficientNetV2B3": ("efficientnet_v2", 300),
    "EfficientNetV2S": ("efficientnet_v2", 384), "EfficientNetV2M": ("efficientnet_v2", 480),
    "EfficientNetV2L": ("efficientnet_v2", 480),
    "ConvNeXtTiny": ("convnext", 224), "ConvNeXtSmall": ("convnext", 224),
    "ConvNeXtBase": ("convnext", 224), "ConvNeXtLarge": ("convnext", 224),
    "ConvNeXtXLarge": ("convnext", 224),
    "NASNetMobile": ("nasnet", 224), "NASNetLarge": ("nasnet", 331),
    "VGG16": ("vgg16", 224), "VGG19": ("vgg19", 224),
}


def _resolve_name(name: str) -> str:
    lookup = {k.lower(): k for k in BACKBONES}
    if name.lower() not in lookup:
        raise ConfigError(f"unknown backbone '{name}' (extraction key 'backbone'); valid: "
                          f"{', '.join(BACKBONES)}")
    return lookup[name.lower()]


class FrameFeatures:
    """Pooled ImageNet-CNN features of RGB frames.

    Args:
        backbone: a name of `BACKBONES` (case-insensitive), e.g. "InceptionV3".
        weights: "imagenet" (Keras downloads them once into ~/.keras), a weights
            file of the backbone built without its top (e.g. Keras'
            `..._notop.h5`), or "random" (untrained).
        image_size: input height and width; 0 for the backbone's default.
        batch_size: frames per forward pass.

    Attributes:
        image_size: (height, width) the frames must have.
        dim: the size of one frame's feature (2048 for InceptionV3).

    Raises:
        ConfigError: unknown backbone name.
        ModelError: the weights cannot be loaded or downloaded.
    """

    def __init__(self, backbone: str = "InceptionV3", weights: str = "imagenet",
                 image_size: int = 0, batch_size: int = 32):
        import keras
        import tensorflow as tf

        self.name = _resolve_name(backbone)
        module, default_size = BACKBONES[self.name]
        size = image_size or default_size
        self.image_size = (size, size)
        self.batch_size = batch_size
        constructor = getattr(keras.applications, self.name)
        self._preprocess = getattr(keras.applications, module).preprocess_input
        kwargs = dict(include_top=False, pooling="avg", input_shape=(size, size, 3))
        if weights == "imagenet":
            try:
                self.model = constructor(weights="imagenet", **kwargs)
            except Exception as exc:  # download or shape errors from Keras
                raise ModelError(
                    f"could not get the ImageNet weights of {self.name} ({exc}); without "
                    "internet, download them elsewhere and give the file as the weights"
                ) from None
        else:
            self.model = constructor(weights=None, **kwargs)
            if weights != "random":
                if not os.path.isfile(weights):
                    raise ModelError(f"backbone weights file not found: {weights}")
                try:
                    self.model.load_weights(weights)
                except Exception as exc:  # h5py / Keras raise various types
                    raise ModelError(f"{weights}: not weights of {self.name} without top at "
                                     f"{size}x{size} ({str(exc).splitlines()[0]})") from None
        self.dim = int(self.model.output_shape[-1])
        model, preprocess = self.model, self._preprocess

        @tf.function(input_signature=[tf.TensorSpec([None, size, size, 3], tf.uint8)])
        def forward(frames):
            return model(preprocess(tf.cast(frames, tf.float32)), training=False)

        self._forward = forward

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        """uint8 frames [T, height, width, 3] -> float32 features [T, dim]."""
        if frames.shape[1:] != self.image_size + (3,):
            raise ValueError(f"frames must be [T, {self.image_size[0]}, {self.image_size[1]}, 3], "
                             f"got {frames.shape}")
        outputs = [self._forward(frames[i : i + self.batch_size]).numpy()
                   for i in range(0, len(frames), self.batch_size)]
        return np.concatenate(outputs) if outputs else np.zeros([0, self.dim], np.float32)
