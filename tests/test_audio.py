"""Audio features (videotag.extraction.audio): the log-mel front end against a NumPy
VGGish written here from the reference, patches at frame times, the VGGish network
and its weights."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from videotag.errors import ModelError
from videotag.extraction import audio as audio_lib

# VGGish's front end in NumPy and float64, written from its definition (tensorflow/models
# research/audioset: mel_features.py, vggish_params.py, vggish_input.py), independent
# of tf.signal: the 16 kHz waveform cut into frames of 400 samples every 160 (the
# incomplete end dropped), a periodic Hann window, |512-point real FFT|, HTK mel
# triangles from 125 to 7500 Hz without the DC bin, log(mel + 0.01).


def _htk_mel(hz):
    return 1127.0 * np.log(1.0 + np.asarray(hz, np.float64) / 700.0)


def _vggish_mel_matrix(bands=64, bins=257, rate=16000, low_hz=125.0, high_hz=7500.0):
    bin_mel = _htk_mel(np.linspace(0.0, rate / 2.0, bins))
    edges = np.linspace(_htk_mel(low_hz), _htk_mel(high_hz), bands + 2)
    matrix = np.zeros((bins, bands))
    for band in range(bands):
        low, centre, high = edges[band:band + 3]
        up = (bin_mel - low) / (centre - low)
        down = (high - bin_mel) / (high - centre)
        matrix[:, band] = np.maximum(0.0, np.minimum(up, down))
    matrix[0, :] = 0.0  # the DC bin
    return matrix


def _vggish_log_mel(wave):
    wave = np.asarray(wave, np.float64)
    count = 1 + (len(wave) - 400) // 160
    frames = np.stack([wave[i * 160:i * 160 + 400] for i in range(count)])
    periodic_hann = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(400) / 400)
    magnitude = np.abs(np.fft.rfft(frames * periodic_hann, 512))
    return np.log(magnitude @ _vggish_mel_matrix() + 0.01)


def test_mel_matrix_is_vggish_and_tf_signal():
    np.testing.assert_allclose(audio_lib.mel_matrix(), _vggish_mel_matrix(), atol=1e-7)
    assert audio_lib.mel_matrix().shape == (257, 64) and not audio_lib.mel_matrix()[0].any()
    expected = tf.signal.linear_to_mel_weight_matrix(64, 257, 16000, 125.0, 7500.0).numpy()
    np.testing.assert_allclose(audio_lib.mel_matrix(), expected, atol=1e-5)


@pytest.mark.parametrize("samples", [400, 559, 560, 16000 + 123])
def test_log_mel_is_vggish(samples):
    rng = np.random.default_rng(samples)
    t = np.arange(samples) / 16000
    wave = 0.5 * np.sin(2 * np.pi * 440 * t) + rng.uniform(-0.3, 0.3, samples)
    expected = _vggish_log_mel(wave)
    assert len(expected) == 1 + (samples - 400) // 160
    np.testing.assert_allclose(audio_lib.log_mel_spectrogram(wave.astype(np.float32)),
                               expected, atol=5e-5)
    # silence: log(0 + 0.01) everywhere
    np.testing.assert_allclose(_vggish_log_mel(np.zeros(samples)), np.log(0.01))


def test_log_mel_frames_and_a_tone_in_its_band():
    assert audio_lib.log_mel_spectrogram(np.zeros(399)).shape == (0, 64)
    t = np.arange(16000) / 16000
    mel = audio_lib.log_mel_spectrogram(np.sin(2 * np.pi * 1000 * t))
    assert mel.shape == (1 + (16000 - 400) // 160, 64)  # 98 frames of 25 ms every 10 ms
    centres = np.linspace(_htk_mel(125), _htk_mel(7500), 66)[1:-1]
    assert np.argmax(mel.mean(axis=0)) == np.argmin(np.abs(centres - _htk_mel(1000)))
    np.testing.assert_allclose(audio_lib.log_mel_spectrogram(np.zeros(1000)), np.log(0.01))


def test_patches_start_at_frame_times_and_pad_with_silence():
    wave = np.random.default_rng(0).uniform(-1, 1, 16000 * 2).astype(np.float32)  # 2 s
    patches = audio_lib.patches_at(wave, np.array([0.0, 1.0, 2.0]))
    assert patches.shape == (3, 96, 64)
    mel = audio_lib.log_mel_spectrogram(wave)
    np.testing.assert_allclose(patches[0], mel[:96], rtol=1e-5)
    np.testing.assert_allclose(patches[1], mel[100:196], rtol=1e-5)
    # the third patch lies after the track: silence, log(0 + 0.01)
    np.testing.assert_allclose(patches[2, 5:], np.log(0.01), rtol=1e-5)


def test_vggish_architecture():
    model = audio_lib.build_vggish()
    assert model.count_params() == 72_141_184  # VGGish's parameter count
    assert model.get_layer("pool4").output.shape[1:] == (6, 4, 512)
    assert model.output_shape == (None, 128)


def _narrow_vggish(seed):
    keras.utils.set_random_seed(seed)
    return audio_lib.build_vggish(width=1 / 16)


def test_vggish_weights_from_keras_file_and_released_checkpoint(tmp_path):
    source = _narrow_vggish(1)
    x = np.random.default_rng(0).normal(size=(2, 96, 64)).astype(np.float32)
    expected = source(x).numpy()
    path = str(tmp_path / "vggish.weights.h5")
    source.save_weights(path)
    model = _narrow_vggish(2)
    audio_lib.load_vggish_weights(model, path)
    np.testing.assert_allclose(model(x).numpy(), expected, rtol=1e-5)
    # a TF checkpoint with the variable names of the released VGGish
    names, tensors = [], []
    for layer, scope in audio_lib.CHECKPOINT_SCOPES.items():
        kernel, bias = source.get_layer(layer).get_weights()
        names += [f"{scope}/weights", f"{scope}/biases"]
        tensors += [kernel, bias]
    prefix = str(tmp_path / "vggish_model.ckpt")
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names, shape_and_slices=[""] * len(names),
                      tensors=tensors)
    model = _narrow_vggish(3)
    audio_lib.load_vggish_weights(model, prefix)
    np.testing.assert_allclose(model(x).numpy(), expected, rtol=1e-5)
    with pytest.raises(ModelError, match=r"'vggish/conv1/weights' has shape \(3, 3, 1, 4\), the network expects \(3, 3, 1, 8\)"):
        audio_lib.load_vggish_weights(audio_lib.build_vggish(width=1 / 8), prefix)
    with pytest.raises(ModelError, match="not found"):
        audio_lib.load_vggish_weights(model, str(tmp_path / "none.weights.h5"))
