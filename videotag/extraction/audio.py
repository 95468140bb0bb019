"""Audio features: log-mel patches and the VGGish network (Hershey et al. 2017).

The front end follows VGGish exactly: 16 kHz mono; short-time Fourier transform
with a 25 ms periodic Hann window (400 samples), 10 ms hop (160 samples) and a
512-point FFT; magnitude (not power); 64 mel bands of the HTK mel scale
(mel = 1127 ln(1 + f / 700)) from 125 to 7500 Hz; log(mel + 0.01). A patch is 0.96 s:
96 frames x 64 bands. Here one patch starts at each sampled video frame's time,
so audio frame i describes the same second as rgb frame i (YT8M: one audio frame
per second; VGGish's own `vggish_input.waveform_to_examples` takes back-to-back
patches); a track shorter than needed is padded with silence.

It is computed with `tf.signal`, whose definitions are VGGish's (the reference,
tensorflow/models research/audioset: `mel_features.py` and `vggish_params.py`; its
YAMNet `features.py` computes the same front end with these `tf.signal` calls):

- `tf.signal.stft`: frames of 400 samples every 160 without end padding (VGGish's
  `frame`: incomplete frames at the end are dropped), a periodic Hann window by
  default (VGGish's `periodic_hann`), each frame zero-padded at its end to the
  512-point real FFT (VGGish's `np.fft.rfft(frames, 512)`).
- `tf.signal.linear_to_mel_weight_matrix`: the HTK mel formula, num_bands + 2 band
  edges evenly spaced in mel from 125 to 7500 Hz, triangles linear in mel, no weight
  on the DC bin: VGGish's `spectrogram_to_mel_matrix` (computed in float64, as
  VGGish does, then rounded to float32).
- tf.signal has no log-mel step: the log offset is VGGish's 0.01 (`LOG_OFFSET`),
  not the 1e-6 of the example in `tf.signal.mfccs_from_log_mel_spectrograms`'s
  documentation.

The network (`build_vggish`) is VGGish's: 3x3 convolutions 64, pool, 128, pool,
256 x2, pool, 512 x2, pool (2x2, stride 2), then dense 4096, 4096 (ReLU) and the
linear 128-d embedding.
"""

from __future__ import annotations

import functools

import numpy as np
import tensorflow as tf

SAMPLE_RATE = 16000
WINDOW = 400  # 25 ms
HOP = 160  # 10 ms
FFT_LENGTH = 512
NUM_BANDS = 64
LOWER_HZ, UPPER_HZ = 125.0, 7500.0
LOG_OFFSET = 0.01
PATCH_FRAMES = 96  # 0.96 s
EMBEDDING_SIZE = 128


@functools.lru_cache(maxsize=None)
def mel_matrix() -> np.ndarray:
    """VGGish's triangular mel filters [257, 64] for a magnitude spectrogram.

    Band b rises linearly (in HTK mel) from edge b to edge b+1 and falls to edge
    b+2, the 66 edges evenly spaced in mel from 125 to 7500 Hz; the DC bin gets no
    weight (`tf.signal.linear_to_mel_weight_matrix`).
    """
    matrix = tf.signal.linear_to_mel_weight_matrix(
        num_mel_bins=NUM_BANDS, num_spectrogram_bins=FFT_LENGTH // 2 + 1,
        sample_rate=SAMPLE_RATE, lower_edge_hertz=LOWER_HZ, upper_edge_hertz=UPPER_HZ,
        dtype=tf.float64)
    return matrix.numpy().astype(np.float32)


def log_mel_spectrogram(waveform: np.ndarray) -> np.ndarray:
    """log(mel magnitude + 0.01) frames [num_frames, 64] of a 16 kHz waveform.

    num_frames = 1 + (samples - 400) // 160 (0 for fewer than 400 samples).
    """
    waveform = tf.convert_to_tensor(np.asarray(waveform, np.float32))
    if waveform.shape[0] < WINDOW:
        return np.zeros([0, NUM_BANDS], np.float32)
    # window_fn defaults to the periodic Hann window; pad_end=False drops incomplete frames
    spectrum = tf.abs(tf.signal.stft(waveform, frame_length=WINDOW, frame_step=HOP,
                                     fft_length=FFT_LENGTH))
    return tf.math.log(tf.matmul(spectrum, mel_matrix()) + LOG_OFFSET).numpy()


def patches_at(waveform: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Log-mel patches [len(times), 96, 64], patch i starting at `times[i]` seconds.

    The waveform is padded with silence (zeros) when the last patch would end after it.
    """
    times = np.asarray(times, np.float64)
    if len(times) == 0:
        return np.zeros([0, PATCH_FRAMES, NUM_BANDS], np.float32)
    starts = np.round(times * SAMPLE_RATE / HOP).astype(np.int64)
    needed = (int(starts.max()) + PATCH_FRAMES - 1) * HOP + WINDOW
    waveform = np.asarray(waveform, np.float32)
    if len(waveform) < needed:
        waveform = np.concatenate([waveform, np.zeros(needed - len(waveform), np.float32)])
    mel = log_mel_spectrogram(waveform[:needed])
    index = starts[:, None] + np.arange(PATCH_FRAMES)[None, :]
    return mel[index]


def build_vggish(width: float = 1.0, embedding_size: int = EMBEDDING_SIZE, name: str = "vggish"):
    """The VGGish network: log-mel patches [B, 96, 64] -> embeddings [B, 128].

    Args:
        width: multiplies every layer's width (1.0 is VGGish, 72 M parameters;
            tests use a narrow copy). Released weights need 1.0.
        embedding_size: size of the linear embedding layer (128 in VGGish).
        name: the Keras model name.

    Layer names follow VGGish's scopes (conv1, conv2, conv3_1, ... fc1_1, fc1_2,
    fc2), which is how `load_vggish_weights` maps the released checkpoint.
    """
    import keras

    def channels(n):
        return max(1, int(round(n * width)))

    inputs = keras.Input((PATCH_FRAMES, NUM_BANDS), name="log_mel")
    x = keras.layers.Reshape((PATCH_FRAMES, NUM_BANDS, 1))(inputs)
    for block, (filters, repeats) in enumerate([(64, 1), (128, 1), (256, 2), (512, 2)], start=1):
        for i in range(repeats):
            layer_name = f"conv{block}" if repeats == 1 else f"conv{block}_{i + 1}"
            x = keras.layers.Conv2D(channels(filters), 3, padding="same", activation="relu",
                                    name=layer_name)(x)
        x = keras.layers.MaxPooling2D(2, strides=2, padding="same", name=f"pool{block}")(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(channels(4096), activation="relu", name="fc1_1")(x)
    x = keras.layers.Dense(channels(4096), activation="relu", name="fc1_2")(x)
    outputs = keras.layers.Dense(embedding_size, name="fc2")(x)
    return keras.Model(inputs, outputs, name=name)


# Keras layer name -> scope of the variables in the released VGGish checkpoint.
CHECKPOINT_SCOPES = {
    "conv1": "vggish/conv1", "conv2": "vggish/conv2",
    "conv3_1": "vggish/conv3/conv3_1", "conv3_2": "vggish/conv3/conv3_2",
    "conv4_1": "vggish/conv4/conv4_1", "conv4_2": "vggish/conv4/conv4_2",
    "fc1_1": "vggish/fc1/fc1_1", "fc1_2": "vggish/fc1/fc1_2", "fc2": "vggish/fc2",
}


def load_vggish_weights(model, path: str) -> None:
    """Loads VGGish weights: a Keras weights file of this model, or the released
    TF checkpoint (`vggish_model.ckpt`, variables `vggish/<scope>/weights|biases`).

    Raises:
        ModelError: the file is missing or does not fit the network, naming the file.
    """
    import tensorflow as tf

    from videotag.errors import ModelError

    if path.endswith((".h5", ".keras")):
        import os

        if not os.path.isfile(path):
            raise ModelError(f"VGGish weights file not found: {path}")
        try:
            model.load_weights(path)
        except (ValueError, OSError, KeyError) as exc:
            raise ModelError(f"{path}: does not hold weights of the VGGish network ({exc})") from None
        return
    try:
        reader = tf.train.load_checkpoint(path)
    except (ValueError, tf.errors.OpError) as exc:
        raise ModelError(
            f"{path}: neither a Keras weights file (.weights.h5) nor a TF checkpoint of "
            f"VGGish ({str(exc).splitlines()[0]})") from None
    for layer_name, scope in CHECKPOINT_SCOPES.items():
        layer = model.get_layer(layer_name)
        values = []
        for variable, part in zip(layer.weights, ("weights", "biases")):
            key = f"{scope}/{part}"
            if not reader.has_tensor(key):
                raise ModelError(f"{path}: the checkpoint has no variable '{key}'")
            value = reader.get_tensor(key)
            if tuple(value.shape) != tuple(variable.shape):
                raise ModelError(f"{path}: variable '{key}' has shape {value.shape}, the "
                                 f"network expects {tuple(variable.shape)}")
            values.append(value)
        layer.set_weights(values)
