"""Titles inside the model: tokenisation, vocabulary, pretrained vectors, text encoders."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import videotag
from tests.helpers import frame_record, write_file
from videotag.data import vocab
from videotag.errors import ConfigError, DataError
from videotag.layers import BiLSTMEncoder, TextCNN, TitleTokenizer, TokenMask


def _ids(layer, titles):
    return keras.ops.convert_to_numpy(layer(tf.constant(titles, tf.string))).tolist()


def test_word_mode_lowercases_and_splits_on_punctuation():
    assert vocab.tokenize(["The CAT, the dog!!  a-b\tc", "", "   ", "Ünïcode ÉCOLE"], "word") == [
        ["the", "cat", "the", "dog", "a", "b", "c"], [], [], ["ünïcode", "école"]]


def test_chinese_titles_are_tokenised_by_character():
    assert vocab.tokenize(["小猫 玩耍，好可爱！"], "char") == [["小", "猫", "玩", "耍", "好", "可", "爱"]]
    # auto: CJK characters one by one, other scripts by words
    assert vocab.tokenize(["我的Cat视频 part 2"], "auto") == [["我", "的", "cat", "视", "频", "part", "2"]]
    # word mode keeps a run of Chinese characters together
    assert vocab.tokenize(["小猫 玩耍"], "word") == [["小猫", "玩耍"]]


def test_tokenizer_ids_padding_oov_and_truncation():
    layer = TitleTokenizer(["cat", "dog", "猫"], mode="auto", max_length=4)
    assert _ids(layer, ["cat zebra dog", "", "猫猫 cat dog cat dog", "DOG!"]) == [
        [2, 1, 3, 0],        # zebra is out of vocabulary (1), 0 pads
        [0, 0, 0, 0],        # empty title: no tokens
        [4, 4, 2, 3],        # 5 tokens cut to max_length 4
        [3, 0, 0, 0],
    ]
    mask = keras.ops.convert_to_numpy(TokenMask()(np.array([[2, 1, 0], [0, 0, 0]])))
    assert mask.tolist() == [[True, True, False], [False, False, False]]


def test_invalid_utf8_bytes_are_dropped_inside_the_model():
    layer = TitleTokenizer(["cat", "dog"], mode="word", max_length=4)
    assert _ids(layer, [b"cat \xff\xfe dog"]) == _ids(layer, ["cat dog"]) == [[2, 3, 0, 0]]


def test_vocabulary_build_save_load_round_trip(tmp_path):
    cfg = videotag.config.load("nextvlad", ["data.use_title=true"])
    titles = ["cat dog", "Cat video", "猫 cat", "", "dog dog zebra"]
    path = write_file(tmp_path / "t.tfrecord", [
        frame_record(f"v{i}".encode(), (1,), title=t, seed=i) for i, t in enumerate(titles)]
        + [frame_record(b"untitled", (1,))])
    tokens, stats = vocab.build_vocabulary(cfg.data, path, "auto", min_count=2, max_size=10)
    # counts: cat 3, dog 3, then the rest once: ties in token order
    assert tokens == ["cat", "dog"]
    assert stats == {"titles": 6, "empty_titles": 2, "distinct_tokens": 5, "token_count": 9,
                     "covered": 6}
    tokens, _ = vocab.build_vocabulary(cfg.data, path, "auto", min_count=1, max_size=4)
    assert tokens == ["cat", "dog", "video", "zebra"]  # "猫" sorts after the Latin ones
    vocab.save_vocabulary(tokens + ["猫"], tmp_path / "v.txt")
    assert vocab.load_vocabulary(tmp_path / "v.txt") == tokens + ["猫"]
    assert (tmp_path / "v.txt").read_text(encoding="utf-8") == "cat\ndog\nvideo\nzebra\n猫\n"


def test_missing_or_bad_vocabulary_file(tmp_path):
    missing = tmp_path / "nowhere" / "vocab.txt"
    with pytest.raises(ConfigError, match=f"model.text.vocab_file.*{missing}"):
        vocab.load_vocabulary(missing)
    (tmp_path / "dup.txt").write_text("cat\ndog\ncat\n", encoding="utf-8")
    with pytest.raises(DataError, match="line 3 repeats the token 'cat' of line 1"):
        vocab.load_vocabulary(tmp_path / "dup.txt")
    (tmp_path / "latin1.txt").write_bytes(b"caf\xe9\n")
    with pytest.raises(DataError, match="not UTF-8"):
        vocab.load_vocabulary(tmp_path / "latin1.txt")


def test_prepare_vocabulary_missing_file_names_the_path(tmp_path):
    cfg = videotag.config.load("multimodal_demo", [f"model.text.vocab_file={tmp_path}/none.txt"])
    with pytest.raises(ConfigError, match=f"{tmp_path}/none.txt"):
        vocab.prepare_vocabulary(cfg, tmp_path)


def test_word2vec_file_loading(tmp_path):
    path = tmp_path / "vectors.txt"
    path.write_text("3 2\ncat 0.5 -1\nDog 2 3\nunused 9 9\n", encoding="utf-8")
    matrix, hits = vocab.load_word2vec(path, ["cat", "dog", "bird"], dim=2, seed=0)
    assert hits == 2  # "Dog" matches "dog" by its lowercase form
    assert matrix.shape == (5, 2) and matrix.dtype == np.float32
    np.testing.assert_array_equal(matrix[0], [0, 0])       # padding
    np.testing.assert_array_equal(matrix[2], [0.5, -1.0])  # cat
    np.testing.assert_array_equal(matrix[3], [2.0, 3.0])   # dog
    assert np.all(matrix[[1, 4]] != 0)                     # OOV and bird: random

    with pytest.raises(ConfigError, match="3-dimensional.*embedding_dim' is 2"):
        path.write_text("1 3\ncat 1 2 3\n", encoding="utf-8")
        vocab.load_word2vec(path, ["cat"], dim=2)
    path.write_text("2 2\ncat 1 2\ndog 1\n", encoding="utf-8")
    with pytest.raises(DataError, match="vectors.txt: line 3: expected a word and 2 values"):
        vocab.load_word2vec(path, ["cat"], dim=2)
    with pytest.raises(ConfigError, match="pretrained_embeddings.*missing.txt"):
        vocab.load_word2vec(tmp_path / "missing.txt", ["cat"], dim=2)


def test_word2vec_file_on_another_file_system(tmp_path):
    """`model.text.pretrained_embeddings` is read through tf.io.gfile (here TensorFlow's
    in-memory ram://, a stand-in for gs://): the same matrix as from a local copy,
    UTF-8 tokens and CRLF lines included; bytes that are not UTF-8 are a DataError."""
    text = "3 2\r\n猫 0.25 -1\r\nDog 2 3\r\nunused 9 9\r\n".encode("utf-8")
    local, remote = tmp_path / "vectors.txt", "ram://word2vec/vectors.txt"
    local.write_bytes(text)
    with tf.io.gfile.GFile(remote, "wb") as f:
        f.write(text)
    tokens = ["猫", "dog", "bird"]
    from_ram, hits = vocab.load_word2vec(remote, tokens, dim=2, seed=0)
    from_disk, _ = vocab.load_word2vec(local, tokens, dim=2, seed=0)
    assert hits == 2
    np.testing.assert_array_equal(from_ram[2:4], [[0.25, -1.0], [2.0, 3.0]])
    np.testing.assert_array_equal(from_ram, from_disk)
    tf.io.gfile.remove(remote)
    with tf.io.gfile.GFile(remote, "wb") as f:
        f.write(b"1 2\ncat \xff 2\n")
    with pytest.raises(DataError, match="vectors.txt: not UTF-8 text"):
        vocab.load_word2vec(remote, ["cat"], dim=2)
    with pytest.raises(ConfigError, match="pretrained_embeddings.*ram://word2vec/none.txt"):
        vocab.load_word2vec("ram://word2vec/none.txt", ["cat"], dim=2)
    tf.io.gfile.remove(remote)


def _embeddings(batch=3, length=6, dim=5, seed=0):
    return np.random.default_rng(seed).normal(size=(batch, length, dim)).astype(np.float32)


@pytest.mark.parametrize("encoder", [
    TextCNN(windows=[2, 3], filters=4),
    BiLSTMEncoder(units=3, pooling="mean"),
    BiLSTMEncoder(units=3, pooling="final"),
])
def test_encoders_ignore_padding_and_give_zeros_for_empty_titles(encoder):
    x = _embeddings()
    mask = np.array([[1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 1], [0, 0, 0, 0, 0, 0]], bool)
    out = keras.ops.convert_to_numpy(encoder(x, mask))
    assert out.shape == (3, encoder.compute_output_shape(x.shape)[1])
    # padded positions changed: same outputs
    y = x.copy()
    y[~mask] = 100.0
    np.testing.assert_allclose(keras.ops.convert_to_numpy(encoder(y, mask)), out, atol=1e-5)
    # more padding at the end (a longer max_length): same outputs
    z = np.concatenate([x, _embeddings(seed=1)[:, :3]], axis=1)
    zmask = np.concatenate([mask, np.zeros((3, 3), bool)], axis=1)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(encoder(z, zmask)), out, atol=1e-5)
    # the empty title: finite and zero, the same as any all-padding sequence
    assert np.all(np.isfinite(out)) and np.all(out[2] == 0)
    assert np.any(out[0] != 0) and np.any(out[0] != out[1])


def test_textcnn_is_max_over_windows_starting_at_real_tokens():
    enc = TextCNN(windows=[2], filters=1)
    enc.build((None, 4, 1))
    enc.convs[0].kernel.assign(np.ones((2, 1, 1), np.float32))  # sums 2 neighbours
    enc.convs[0].bias.assign(np.zeros(1, np.float32))
    x = np.array([[[1.0], [5.0], [2.0], [7.0]]], np.float32)
    mask = np.array([[True, True, True, False]])
    # windows (1, 5), (5, 2), (2, pad=0): max 7; the padded 7 never counts
    assert keras.ops.convert_to_numpy(enc(x, mask)).tolist() == [[7.0]]


def test_unknown_encoder_or_parameter():
    from videotag.layers import build_text_encoder

    with pytest.raises(ConfigError, match="'model.text.encoder' names an unknown text encoder "
                                          "'gru'.*valid: bilstm, textcnn, transformer"):
        build_text_encoder("gru")
    with pytest.raises(ConfigError, match="'model.text.encoder.kernel'.*valid keys of text "
                                          "encoder textcnn: activation, alignment, filters, windows"):
        build_text_encoder({"type": "textcnn", "kernel": 3})
    with pytest.raises(ConfigError, match="config key 'model.text.encoder.pooling' is 'max'; "
                                          "valid: mean, final"):
        videotag.config.load("multimodal_demo", ["model.text.encoder={type: bilstm, pooling: max}"])
    with pytest.raises(ConfigError, match=r"'model.text.encoder.windows' is \[0, 2\]"):
        videotag.config.load("multimodal_demo", ["model.text.encoder.windows=[0, 2]"])
    with pytest.raises(ConfigError, match="'model.text.encoder.filters' expects int, got str"):
        videotag.config.load("multimodal_demo", ["model.text.encoder.filters=many"])
    with pytest.raises(ConfigError, match="model.text.tokenizer"):
        videotag.config.load("multimodal_demo", ["model.text.tokenizer=bytes"])


def test_tokenizer_layer_round_trips_through_keras_config():
    layer = TitleTokenizer(["cat", "猫"], mode="char", max_length=3, name="title_tokens")
    again = TitleTokenizer.from_config(layer.get_config())
    assert again.vocabulary == ["cat", "猫"] and again.mode == "char"
    assert _ids(again, ["猫c"]) == _ids(layer, ["猫c"]) == [[3, 1, 0]]
