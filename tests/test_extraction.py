"""Raw videos -> records (videotag.extraction): decoding, backbones, PCA, inputs,
and the extraction run on tiny videos made here with PyAV (audio features:
test_audio.py)."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from videotag.config import DataConfig
from videotag.data import schema
from videotag.data import make_dataset
from videotag.errors import ConfigError, DataError, ModelError
from videotag.extraction import (
    ExtractionConfig,
    Extractor,
    Pca,
    PcaFitter,
    extract,
    fit_pca,
)
from videotag.extraction import audio as audio_lib
from videotag.extraction.config import check_compatible
from videotag.extraction.decode import decode_video
from videotag.extraction.inputs import list_videos
from videotag.extraction.rgb import FrameFeatures
from videotag.extraction.synthetic import write_video

RGB_SIZE, AUDIO_SIZE = 16, 8
RED, GREEN = (200, 40, 40), (40, 180, 60)


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    """A folder: three good videos (mp4, webm, mkv), one without audio, a text file
    named .mp4, a truncated mkv, and a readme."""
    root = tmp_path_factory.mktemp("videos")
    write_video(root / "red.mp4", seconds=3.0, color=RED, tone_hz=440.0)
    write_video(root / "green.webm", seconds=2.5, color=GREEN, tone_hz=880.0, seed=1)
    write_video(root / "mix.mkv", seconds=3.0, color=(40, 70, 200), tone_hz=660.0, seed=2)
    write_video(root / "silent.mp4", seconds=3.0, color=RED, tone_hz=None)
    (root / "notes.mp4").write_text("this is not a video\n")
    long_mkv = write_video(root / "long.tmp.mkv", seconds=8.0, seed=3)
    data = open(long_mkv, "rb").read()
    (root / "cut.mkv").write_bytes(data[: len(data) // 3])  # truncated: header says 8 s
    (root / "long.tmp.mkv").unlink()
    (root / "readme.txt").write_text("videos for the tests\n")
    return root


def _cfg(**kwargs):
    base = dict(backbone="MobileNetV3Small", backbone_weights="random", image_size=32,
                feature_sizes=[RGB_SIZE, AUDIO_SIZE], audio_weights="random", batch_size=4,
                num_decoders=2, prefetch=2)
    base.update(kwargs)
    return ExtractionConfig(**base)


@pytest.fixture(scope="module")
def extractor(videos, tmp_path_factory):
    """A tiny extractor (small CNN, narrow VGGish) with a PCA fitted on the videos."""
    keras.utils.set_random_seed(0)
    cfg = _cfg()
    ext = Extractor(cfg, with_pca=False, vggish=audio_lib.build_vggish(width=1 / 16))
    pca_dir = tmp_path_factory.mktemp("pca")
    summary, pcas = fit_pca(cfg, [str(videos)], str(pca_dir), extractor=ext, progress=False)
    return ext, summary, pca_dir


# ------------------------------------------------------------------ decoding


@pytest.mark.parametrize("name,frames", [("red.mp4", 3), ("green.webm", 3), ("mix.mkv", 3)])
def test_decode_one_frame_per_second(videos, name, frames):
    video = decode_video(str(videos / name), (24, 32))
    assert video.frames.shape == (frames, 24, 32, 3) and video.frames.dtype == np.uint8
    np.testing.assert_allclose(video.times, np.arange(frames))
    # the background colour survives encoding, decoding and resizing (corner pixels)
    expected = {"red.mp4": RED, "green.webm": GREEN}.get(name)
    if expected:
        np.testing.assert_allclose(video.frames[1:, -2, -2], [expected] * (frames - 1), atol=12)


def test_decode_caps_fps_and_uniform(videos):
    path = str(videos / "red.mp4")
    assert len(decode_video(path, (8, 8), max_frames=2).frames) == 2
    np.testing.assert_allclose(decode_video(path, (8, 8), fps=2.0).times, np.arange(6) / 2)
    uniform = decode_video(path, (8, 8), sampling="uniform", num_frames=5)
    assert len(uniform.frames) == 5
    np.testing.assert_allclose(uniform.times, (np.arange(5) + 0.5) * 3.0 / 5)


def test_decode_audio_is_16khz_mono_of_the_tone(videos):
    video = decode_video(str(videos / "red.mp4"), (8, 8))
    wave = video.waveform
    assert wave.ndim == 1 and wave.dtype == np.float32
    assert abs(len(wave) - 3.0 * 16000) < 0.05 * 3 * 16000
    assert np.abs(wave).max() <= 1.0
    # mean of two identical channels: the tone's amplitude (0.4) is kept
    assert 0.3 < np.sqrt(2 * np.mean(wave[8000:40000] ** 2)) < 0.5
    spectrum = np.abs(np.fft.rfft(wave[:32000]))
    assert abs(np.argmax(spectrum) * 16000 / 32000 - 440) < 2
    assert decode_video(str(videos / "silent.mp4"), (8, 8)).waveform is None


def test_decode_errors_name_the_file(videos, tmp_path):
    with pytest.raises(DataError, match="notes.mp4: cannot be opened as a video"):
        decode_video(str(videos / "notes.mp4"), (8, 8))
    with pytest.raises(DataError, match=r"cut.mkv: frames stop at .* of the declared 8.0 s"):
        decode_video(str(videos / "cut.mkv"), (8, 8))
    with pytest.raises(DataError, match="missing.mp4: file not found"):
        decode_video(str(tmp_path / "missing.mp4"), (8, 8))


def test_audio_longer_than_the_picture_is_not_truncation(tmp_path):
    # Matroska declares one duration for all streams: here the audio's 5 s
    path = write_video(tmp_path / "a.mkv", seconds=2.0, audio_seconds=5.0)
    video = decode_video(path, (8, 8))
    assert len(video.frames) == 2 and len(video.waveform) > 4.5 * 16000


# ------------------------------------------------------------------ rgb backbone


def test_backbone_by_name_and_weights_file(tmp_path):
    keras.utils.set_random_seed(0)
    first = FrameFeatures("mobilenetv3small", "random", image_size=32, batch_size=3)
    assert first.name == "MobileNetV3Small" and first.image_size == (32, 32)
    frames = np.random.default_rng(0).integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)
    features = first(frames)
    assert features.shape == (5, first.dim) and features.dtype == np.float32
    # batching does not change a frame's feature
    np.testing.assert_allclose(first(frames[2:3])[0], features[2], rtol=1e-4, atol=1e-5)
    path = str(tmp_path / "backbone.weights.h5")
    first.model.save_weights(path)
    second = FrameFeatures("MobileNetV3Small", path, image_size=32)
    np.testing.assert_allclose(second(frames), features, rtol=1e-4, atol=1e-5)
    with pytest.raises(ConfigError, match="unknown backbone 'AlexNet'"):
        FrameFeatures("AlexNet", "random")
    with pytest.raises(ModelError, match="weights file not found"):
        FrameFeatures("MobileNetV3Small", str(tmp_path / "nothing.h5"), image_size=32)


# ------------------------------------------------------------------ PCA


def test_whitening_formula_by_hand():
    pca = Pca(mean=[1.0, 2.0], eigenvecs=[[0.0, 1.0], [1.0, 0.0]], eigenvals=[4.0, 1.0])
    # (x - mean) = [2, 3]; @ V = [3, 2]; / sqrt([4, 1] + 1e-4)
    np.testing.assert_allclose(pca(np.array([[3.0, 5.0]])),
                               [[3 / np.sqrt(4.0001), 2 / np.sqrt(1.0001)]], rtol=1e-6)
    plain = Pca(mean=[1.0, 2.0], eigenvecs=[[0.0, 1.0], [1.0, 0.0]])  # VGGish: no whitening
    np.testing.assert_allclose(plain(np.array([[3.0, 5.0]])), [[3.0, 2.0]])


def test_pca_fit_whitens_and_round_trips_through_files(tmp_path):
    rng = np.random.default_rng(0)
    mixing = rng.normal(size=(6, 6)) * [5, 3, 2, 1, 0.5, 0.1]
    x = rng.normal(size=(4000, 6)) @ mixing.T + 10
    fitter = PcaFitter(6)
    for chunk in np.array_split(x, 7):  # streamed: same as one batch
        fitter.add(chunk)
    pca = fitter.fit(4)
    np.testing.assert_allclose(pca.mean, x.mean(axis=0), rtol=1e-9)
    values = np.linalg.eigvalsh(np.cov(x.T))[::-1][:4]
    np.testing.assert_allclose(pca.eigenvals, values, rtol=1e-6)
    y = pca(x)
    np.testing.assert_allclose(np.cov(y.T), np.eye(4), atol=1e-3)  # whitened
    pca.save(tmp_path / "p")
    shapes = {f: np.load(tmp_path / "p" / f).shape for f in ("mean.npy", "eigenvecs.npy",
                                                                "eigenvals.npy")}
    assert shapes == {"mean.npy": (6, 1), "eigenvecs.npy": (4, 6), "eigenvals.npy": (4, 1)}
    loaded = Pca.load(tmp_path / "p", input_dim=6, output_dim=4)
    np.testing.assert_allclose(loaded(x), y, rtol=1e-4, atol=1e-4)
    # fewer components: the first ones; eigenvectors as columns [D, K] load too
    np.testing.assert_allclose(Pca.load(tmp_path / "p", 6, 2)(x), y[:, :2], rtol=1e-4, atol=1e-4)
    np.save(tmp_path / "p" / "eigenvecs.npy", pca.eigenvecs)  # [6, 4]
    np.testing.assert_allclose(Pca.load(tmp_path / "p", 6, 4)(x), y, rtol=1e-4, atol=1e-4)
    with pytest.raises(ConfigError, match="6 values, the network gives 8-d"):
        Pca.load(tmp_path / "p", input_dim=8, output_dim=4)
    with pytest.raises(ConfigError, match="4 components, the records need 5"):
        Pca.load(tmp_path / "p", input_dim=6, output_dim=5)
    with pytest.raises(ConfigError, match="cannot make 7 components from 6-d"):
        fitter.fit(7)


def test_pca_loads_vggish_npz(tmp_path):
    rng = np.random.default_rng(1)
    vecs, means = np.linalg.qr(rng.normal(size=(4, 4)))[0], rng.normal(size=(4, 1))
    np.savez(tmp_path / "vggish_pca_params.npz", pca_eigen_vectors=vecs, pca_means=means)
    pca = Pca.load(tmp_path / "vggish_pca_params.npz", 4, 4)
    x = rng.normal(size=(3, 4))
    np.testing.assert_allclose(pca(x), (vecs @ (x.T - means)).T, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------ inputs


def test_manifest_titles_labels_and_errors(videos, tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("Cat\nDog\nBird\n")
    manifest = tmp_path / "list.tsv"
    manifest.write_text(f"# path, title, labels\n{videos}/red.mp4\t红色 video\tDog,2\n"
                        f"{videos}/green.webm\n\n{videos}/mix.mkv\t\t0\n")
    items, ignored = list_videos([str(manifest)], str(labels))
    assert [(i.video_id, i.title, i.labels) for i in items] == [
        ("red", "红色 video", [1, 2]), ("green", None, []), ("mix", None, [0])]
    assert ignored == []
    manifest.write_text("red.mp4\tx\tCow\n")
    with pytest.raises(DataError, match=r"list.tsv: line 1: label 'Cow' is not a class"):
        list_videos([str(manifest)], str(labels))
    manifest.write_text("red.mp4\tx\t3\n")
    with pytest.raises(DataError, match=r"line 1: label id 3 is not in \[0, 3\)"):
        list_videos([str(manifest)], str(labels))
    items, ignored = list_videos([str(videos)])
    assert [i.video_id for i in items] == ["cut", "green", "mix", "notes", "red", "silent"]
    assert [p.split("/")[-1] for p in ignored] == ["readme.txt"]
    with pytest.raises(DataError, match="two videos have the id 'red'"):
        list_videos([str(videos / "red.mp4"), str(videos)])


# ------------------------------------------------------------------ the run


def _read(pattern, cfg):
    data = DataConfig(feature_sizes=[RGB_SIZE, AUDIO_SIZE], num_classes=5, id_key=cfg.id_key)
    rows = {}
    for batch in make_dataset(data, pattern, batch_size=16, training=False):
        for i, vid in enumerate(batch[schema.VIDEO_ID_KEY].numpy()):
            n = int(batch[schema.NUM_FRAMES_KEY][i])
            rows[vid.decode()] = {"rgb": batch["rgb"][i, :n].numpy(),
                                  "audio": batch["audio"][i, :n].numpy(),
                                  "labels": np.flatnonzero(batch["labels"][i].numpy()).tolist()}
    return rows


def test_extract_writes_records_the_reader_reads(videos, extractor, tmp_path):
    ext, fit_summary, _ = extractor
    assert fit_summary.extracted == 4 and len(fit_summary.failed) == 2
    out = tmp_path / "out"
    summary = extract(ext.cfg, [str(videos)], str(out), extractor=ext, progress=False)
    assert summary.extracted == 4 and summary.frames == 12
    assert sorted(p.split("/")[-1] for p, _ in summary.failed) == ["cut.mkv", "notes.mp4"]
    assert [p.split("/")[-1] for p in summary.no_audio] == ["silent.mp4"]
    assert json.loads((out / "summary.json").read_text())["extracted"] == 4
    rows = _read(str(out / "part-*.tfrecord"), ext.cfg)
    assert sorted(rows) == ["green", "mix", "red", "silent"]
    for vid, row in rows.items():
        assert row["rgb"].shape == (3, RGB_SIZE) and row["audio"].shape == (3, AUDIO_SIZE)
        assert row["labels"] == []
        # the same features as the extractor gives for that file alone
        path = next(p for p in videos.iterdir() if p.stem == vid)
        expected = ext.features(ext.decode(str(path)))
        np.testing.assert_array_equal(row["rgb"], expected["rgb"])
        np.testing.assert_array_equal(row["audio"], expected["audio"])
    # the codes are the network's features through the PCA, clipped and quantized
    decoded = ext.decode(str(videos / "red.mp4"))
    raw = ext.embed(decoded)
    for name in ("rgb", "audio"):
        reduced = np.clip(ext.pca[name](raw[name]), -2, 2)
        np.testing.assert_allclose(schema.dequantize(rows["red"][name]), reduced,
                                   atol=2 / 255 + 4 / 512 + 1e-5)  # half a step + YT8M bias
    # a tone of another pitch gives other audio features (an untrained MobileNet's
    # rgb features are too small to leave the central codes after whitening)
    assert np.abs(rows["red"]["audio"].astype(int) - rows["green"]["audio"]).max() > 10
    # the silent video's audio: every second is the same silent patch
    silent = rows["silent"]["audio"]
    assert (silent == silent[0]).all()
    patch = np.full((1, 96, 64), np.log(0.01), np.float32)
    embedding = ext.vggish(patch).numpy()
    np.testing.assert_array_equal(silent[0], schema.quantize(ext.pca["audio"](embedding))[0])


def test_missing_audio_zeros_and_error(videos, extractor):
    ext, _, _ = extractor
    silent = str(videos / "silent.mp4")
    ext.cfg.missing_audio = "zeros"
    try:
        features = ext.features(ext.decode(silent))
        assert (features["audio"] == 128).all()  # quantize(0): the mean audio after PCA
        assert features["audio"].shape == (3, AUDIO_SIZE)
        ext.cfg.missing_audio = "error"
        with pytest.raises(DataError, match="silent.mp4: has no audio track"):
            ext.decode(silent)
    finally:
        ext.cfg.missing_audio = "silence"


def test_manifest_records_carry_title_and_labels(videos, extractor, tmp_path):
    ext, _, _ = extractor
    manifest = tmp_path / "m.tsv"
    manifest.write_text(f"{videos}/red.mp4\tRed 红 square\t1,3\n{videos}/mix.mkv\t\t\n")
    extract(ext.cfg, [str(manifest)], str(tmp_path / "out"), extractor=ext, progress=False)
    records = list(tf.data.TFRecordDataset(str(tmp_path / "out" / "part-00000.tfrecord")))
    parsed = [tf.io.parse_single_sequence_example(r.numpy(), context_features={
        "id": tf.io.FixedLenFeature([], tf.string),
        "title": tf.io.FixedLenFeature([], tf.string, default_value=b"<none>"),
        "labels": tf.io.VarLenFeature(tf.int64)})[0] for r in records]
    assert [(c["id"].numpy(), c["title"].numpy().decode(), c["labels"].values.numpy().tolist())
            for c in parsed] == [(b"red", "Red 红 square", [1, 3]), (b"mix", "<none>", [])]
    assert _read(str(tmp_path / "out" / "part-*.tfrecord"), ext.cfg)["red"]["labels"] == [1, 3]


def test_rerun_skips_done_videos_and_redoes_an_unfinished_shard(videos, extractor, tmp_path):
    ext, _, _ = extractor
    ext.cfg.videos_per_shard = 2
    try:
        out = tmp_path / "out"
        first = extract(ext.cfg, [str(videos)], str(out), extractor=ext, progress=False)
        assert first.extracted == 4 and len(first.shards) == 2
        again = extract(ext.cfg, [str(videos)], str(out), extractor=ext, progress=False)
        assert (again.extracted, again.skipped, again.shards) == (0, 4, [])
        assert len(again.failed) == 2  # bad files are tried again, and fail again
        # a run killed after writing a shard's ids but before renaming the shard,
        # with a temporary file left behind
        (out / "part-00001.tfrecord").unlink()
        (out / "part-00001.tfrecord.tmp-99").write_bytes(b"partial")
        third = extract(ext.cfg, [str(videos)], str(out), extractor=ext, progress=False)
        assert (third.extracted, third.skipped) == (2, 2)
        assert not list(out.glob("*.tmp-*"))
        assert sorted(_read(str(out / "part-*.tfrecord"), ext.cfg)) == [
            "green", "mix", "red", "silent"]
    finally:
        ext.cfg.videos_per_shard = 100
    other = _cfg(feature_sizes=[RGB_SIZE, 4])
    with pytest.raises(ConfigError, match=r"feature_sizes=\[16, 8\], this run has"):
        check_compatible(other, out)


def test_missing_pca_and_audio_weights_are_config_errors():
    with pytest.raises(ConfigError, match="no PCA for 'rgb'"):
        Extractor(_cfg())
    with pytest.raises(ConfigError, match="'audio_weights' is empty"):
        Extractor(_cfg(audio_weights="", feature_names=["audio"], feature_sizes=[8]),
                  with_pca=False)
