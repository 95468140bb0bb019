"""The contract every layer of `videotag.layers` keeps, checked layer by layer.

Every class in `videotag.layers.__all__` is tested here (a new layer is covered by
adding it to the package and an entry to CASES, and fails loudly without one):
- get_config -> from_config gives the same config and, with the weights copied,
  the same outputs;
- `keras.saving.serialize_keras_object` / `deserialize_keras_object` round trip
  (the class is registered under the "videotag" package);
- a `.keras` file of a tiny model holding the layer loads and computes the same,
  also when the layer was saved under a mixed precision policy (its sublayers
  included);
- mixed precision (`dtype="mixed_bfloat16"` and `"mixed_float16"` given to the
  layer): it builds and runs, every sublayer computes in the policy's dtype, float
  variables stay float32, and outputs are finite, in the compute dtype, or float32
  where the layer documents it (probabilities of the heads);
- a layer that takes a frame or token mask ignores the padded positions: garbage
  there changes no output (in inference, and in training for layers whose training
  pass is deterministic: the masked batch norm's statistics).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, Optional, Tuple

import keras
import keras_hub
import numpy as np
import pytest

import videotag.layers

# Names of __all__ that are helper functions, not layers.
NOT_LAYERS = {"build_fusion", "build_head", "build_text_encoder", "masked_softmax"}
LAYERS = [name for name in videotag.layers.__all__ if name not in NOT_LAYERS]

BATCH, STEPS, FEATURES = 3, 6, 8
LENGTHS = np.array([6, 4, 1], np.int32)  # valid frames of the 3 examples (a prefix each)
TOKENS, EMBEDDING = 5, 6
TOKEN_LENGTHS = np.array([5, 2, 1], np.int32)
RNG = np.random.default_rng(0)


def _normal(*shape):
    return RNG.normal(size=shape).astype(np.float32)


def _prefix_mask(lengths, steps):
    return np.arange(steps)[None, :] < lengths[:, None]


FRAMES = _normal(BATCH, STEPS, FEATURES)
MASK = _prefix_mask(LENGTHS, STEPS)
VECTOR = _normal(BATCH, FEATURES)
EMBEDDINGS = _normal(BATCH, TOKENS, EMBEDDING)
TOKEN_MASK = _prefix_mask(TOKEN_LENGTHS, TOKENS)
# a keras-hub WordPiece tokenizer and a tiny BERT backbone, as configs (no preset folder)
WORDPIECES = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "cat", "walk", "##s", "猫"]
BERT_TOKENIZER = keras.saving.serialize_keras_object(
    keras_hub.models.BertTokenizer(vocabulary=WORDPIECES, lowercase=True))
BERT = keras.saving.serialize_keras_object(keras_hub.models.BertBackbone(
    vocabulary_size=len(WORDPIECES), num_layers=1, num_heads=2, hidden_dim=EMBEDDING,
    intermediate_dim=8, max_sequence_length=TOKENS))


@dataclasses.dataclass
class Case:
    """How to build and call one layer.

    Attributes:
        kwargs: constructor arguments (small sizes).
        args: positional call inputs (arrays; a list for the fusions' list input).
        call_kwargs: keyword call inputs (arrays), e.g. {"mask": MASK}.
        outputs: dtype of each output: "compute" (the policy's compute dtype),
            or a fixed dtype ("float32", "bool", "int32").
        mask: where the mask is: ("args", i) or ("kwargs", name); None: no mask.
        padded: indices of `args` whose axis 1 is the masked axis.
        padded_outputs: "same" when outputs at padded positions are part of the
            contract too (zeros, or no time axis); "ignore" for per-frame outputs
            that are defined at valid positions only.
        training_mask: also check the mask in training (deterministic training pass).
    """

    kwargs: Dict[str, Any]
    args: Tuple
    call_kwargs: Dict[str, Any] = dataclasses.field(default_factory=dict)
    outputs: Tuple[str, ...] = ("compute",)
    mask: Optional[Tuple[str, Any]] = None
    padded: Tuple[int, ...] = ()
    padded_outputs: str = "same"
    training_mask: bool = False


def _frame_case(kwargs, training_mask=True, **more):
    """A layer over frames [B, T, D] with an optional `mask` keyword."""
    return Case(kwargs, (FRAMES,), {"mask": MASK}, mask=("kwargs", "mask"), padded=(0,),
                training_mask=training_mask, **more)


CASES: Dict[str, Case] = {
    "AttentionClusters": _frame_case({"num_clusters": 3}),
    "AttentionPooling": _frame_case({}),
    "BiLSTM": _frame_case({"units": 4}),
    "BiLSTMEncoder": Case({"units": 4, "pooling": "mean"}, (EMBEDDINGS, TOKEN_MASK),
                          mask=("args", 1), padded=(0,), training_mask=True),
    "CategoryHead": Case({"num_categories": 4}, (VECTOR,), outputs=("float32",)),
    "ConcatSEFusion": Case({"hidden_size": 8, "gating_reduction": 2, "dropout": 0.5},
                           ([VECTOR, _normal(BATCH, 5)],)),
    "ContextGating": Case({}, (VECTOR,)),
    "DBoF": _frame_case({"cluster_size": 16, "pooling": "max"}),
    "Dequantize": Case({}, (RNG.integers(0, 256, (BATCH, STEPS, FEATURES), dtype=np.uint8),)),
    "FrameMask": Case({}, (FRAMES, LENGTHS), outputs=("bool",)),
    "FrameNormalization": Case({"mode": "eigenvalues", "scale": list(np.linspace(0.5, 2.0, 8))},
                               ([FRAMES, _normal(BATCH, STEPS, 5)],),
                               outputs=("compute", "compute")),
    "GatedFusion": Case({"hidden_size": 8, "gating_reduction": 2, "dropout": 0.5},
                        ([VECTOR, _normal(BATCH, 5)],)),
    "HmcHead": Case({"num_classes": 5, "hidden_size": 8, "local_levels": [2, 3],
                     "local_weight": 0.3, "dropout": 0.5}, (VECTOR,), outputs=("float32",)),
    "LogisticHead": Case({"num_classes": 5, "l2_bias": True}, (VECTOR,), outputs=("float32",)),
    "LogitMixture": Case({}, ([_normal(BATCH, 5), _normal(BATCH, 5)],
                              [_normal(BATCH, 4), VECTOR],
                              np.array([[0.2, 0.8], [0.5, 0.5], [1.0, 0.0]], np.float32)),
                         outputs=("float32", "float32", "float32", "compute")),
    "MaskedBatchNormalization": _frame_case({}, padded_outputs="ignore"),
    "MixtureWeights": _frame_case({"num_members": 3, "slots": 8}, outputs=("float32",)),
    "MoeHead": Case({"num_classes": 5, "num_mixtures": 2, "prob_gating": True}, (VECTOR,),
                    outputs=("float32",)),
    "NetFV": _frame_case({"cluster_size": 4}),
    "NetRVLAD": _frame_case({"cluster_size": 4}),
    "NetVLAD": _frame_case({"cluster_size": 4}),
    "NeXtVLAD": _frame_case({"cluster_size": 4, "groups": 2, "expansion": 2}),
    "PresetTitleTokenizer": Case({"tokenizer": BERT_TOKENIZER, "vocabulary": WORDPIECES,
                                  "sequence_length": TOKENS},
                                 (np.array([b"Cat walks", b"", "猫 dog".encode()], dtype=object),),
                                 outputs=("int32",)),
    "SEContextGating": Case({"reduction": 2}, (VECTOR,)),
    "SampleFrames": Case({"num_samples": 3, "seed": 1}, (FRAMES, MASK),
                         outputs=("compute", "bool"), mask=("args", 1), padded=(0,)),
    "SoftAssignment": _frame_case({"cluster_size": 4}),
    "SoftDBoF": _frame_case({"cluster_size": 8, "max_pool": True}),
    "StackedLSTM": _frame_case({"units": 4, "num_layers": 2}),
    "TemporalRelation": _frame_case({"segments": 3, "subsample": 2, "frame_size": 4,
                                     "bottleneck": 4, "hidden_size": 4, "seed": 1},
                                    training_mask=False),  # training draws at random
    "TextCNN": Case({"windows": [1, 2, 3], "filters": 4}, (EMBEDDINGS, TOKEN_MASK),
                    mask=("args", 1), padded=(0,)),
    "TextGuidedAttention": Case({"units": 4}, (FRAMES, _normal(BATCH, 5), MASK),
                                mask=("args", 2), padded=(0,)),
    "TitleTokenizer": Case({"vocabulary": ["cat", "walks", "猫"], "mode": "auto",
                            "max_length": TOKENS},
                           (np.array([b"cat walks", b"", "猫 dog".encode()], dtype=object),),
                           outputs=("int32",)),
    "TokenMask": Case({}, (np.array([[3, 4, 0, 0, 0], [2, 0, 0, 0, 0], [0] * 5], np.int32),),
                      outputs=("bool",)),
    "TransformerTitleEncoder": Case(
        {"backbone": BERT, "output": "textcnn", "dropout": 0.5,
         "textcnn": {"windows": [1, 2], "filters": 3, "activation": "tanh", "alignment": "center"}},
        (EMBEDDINGS, TOKEN_MASK), mask=("args", 1), padded=(0,)),
}


def _case(name) -> Case:
    if name not in CASES:
        pytest.fail(f"videotag.layers.{name} has no entry in CASES of tests/test_layer_contract.py:"
                    " add its constructor arguments and example inputs there")
    return CASES[name]


def _flat(outputs):
    return [keras.ops.convert_to_numpy(x) for x in keras.tree.flatten(outputs)]


def _call(layer, case: Case, args=None, training=None):
    kwargs = dict(case.call_kwargs)
    if training is not None:
        kwargs["training"] = training
    return layer(*(case.args if args is None else args), **kwargs)


def _assert_same(actual, expected, rtol=1e-6, atol=1e-6):
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        assert a.dtype == e.dtype and a.shape == e.shape
        if a.dtype.kind in "fc":
            np.testing.assert_allclose(a, e, rtol=rtol, atol=atol)
        else:
            np.testing.assert_array_equal(a, e)


def _sublayers(layer, seen=None):
    """Every layer reachable through the public attributes of `layer`."""
    seen = {id(layer)} if seen is None else seen
    found = []

    def visit(value):
        if isinstance(value, keras.layers.Layer):
            if id(value) not in seen:
                seen.add(id(value))
                found.append(value)
                found.extend(_sublayers(value, seen))
        elif isinstance(value, (list, tuple)):
            for item in value:
                visit(item)
        elif isinstance(value, dict):
            for item in value.values():
                visit(item)

    for key, value in vars(layer).items():
        if not key.startswith("_"):
            visit(value)
    return found


def _float_sublayers(layer):
    """The sublayers but those computing ids (a tokenizer's dtype is its ids')."""
    return [part for part in _sublayers(layer) if not keras.backend.is_int_dtype(part.compute_dtype)]


def test_every_name_is_a_layer_or_a_listed_helper():
    for name in videotag.layers.__all__:
        value = getattr(videotag.layers, name)
        is_layer = isinstance(value, type) and issubclass(value, keras.layers.Layer)
        assert is_layer == (name not in NOT_LAYERS), name
    assert set(CASES) <= set(LAYERS), sorted(set(CASES) - set(LAYERS))  # no stale entries


@pytest.mark.parametrize("name", LAYERS)
def test_config_round_trip_gives_the_same_layer(name):
    case = _case(name)
    cls = getattr(videotag.layers, name)
    layer = cls(**case.kwargs)
    expected = _flat(_call(layer, case))
    config = layer.get_config()
    clone = cls.from_config(config)
    assert clone.get_config() == config
    _call(clone, case)  # builds it
    assert len(clone.weights) == len(layer.weights)
    clone.set_weights(layer.get_weights())
    _assert_same(_flat(_call(clone, case)), expected)


@pytest.mark.parametrize("name", LAYERS)
def test_keras_serialization_round_trip(name):
    case = _case(name)
    cls = getattr(videotag.layers, name)
    assert keras.saving.get_registered_name(cls) == f"videotag>{name}"
    layer = cls(**case.kwargs)
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(again) is cls
    assert again.get_config() == layer.get_config()


def _symbolic(value):
    value = np.asarray(value)
    dtype = "string" if value.dtype == object else str(value.dtype)
    return keras.Input(shape=value.shape[1:], dtype=dtype)


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
@pytest.mark.parametrize("name", LAYERS)
def test_keras_file_of_a_model_holding_the_layer(name, policy, tmp_path):
    # loaded in a float32 process: a layer saved under a mixed policy keeps it, sublayers too
    case = _case(name)
    layer = getattr(videotag.layers, name)(**case.kwargs, name="under_test", dtype=policy)
    args = keras.tree.map_structure(_symbolic, case.args)
    kwargs = keras.tree.map_structure(_symbolic, case.call_kwargs)
    model = keras.Model(keras.tree.flatten((args, kwargs)), layer(*args, **kwargs))
    inputs = keras.tree.flatten((case.args, case.call_kwargs))
    expected = _flat(model(inputs))
    _assert_same(expected, _flat(_call(layer, case)))  # the model computes the layer
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    again = loaded.get_layer("under_test")
    assert type(again) is type(layer)
    compute = keras.mixed_precision.Policy(policy).compute_dtype
    for part in [again] + _float_sublayers(again):
        assert part.compute_dtype == compute, (name, part.name, part.compute_dtype)
    _assert_same(_flat(loaded(inputs)), expected)


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
@pytest.mark.parametrize("name", LAYERS)
def test_mixed_precision_policy(name, policy):
    case = _case(name)
    layer = getattr(videotag.layers, name)(**case.kwargs, dtype=policy)
    outputs = keras.tree.flatten(_call(layer, case))
    compute = keras.mixed_precision.Policy(policy).compute_dtype
    assert len(outputs) == len(case.outputs)
    for output, kind in zip(outputs, case.outputs):
        expected = compute if kind == "compute" else kind
        assert keras.backend.standardize_dtype(output.dtype) == expected, (name, kind)
        value = keras.ops.convert_to_numpy(keras.ops.cast(output, "float32")
                                           if expected in ("bfloat16", "float16") else output)
        if value.dtype.kind == "f":
            assert np.isfinite(value).all(), name
    for variable in layer.weights:
        if keras.backend.is_float_dtype(variable.dtype):
            assert variable.dtype == "float32", variable.path
    for sublayer in _float_sublayers(layer):
        assert sublayer.compute_dtype == compute, (name, sublayer.name, sublayer.compute_dtype)


def _with_garbage(case: Case, rng):
    """The case's args with large random values at every padded position."""
    where, key = case.mask
    mask = np.asarray(case.args[key] if where == "args" else case.call_kwargs[key])
    args = list(case.args)
    for index in case.padded:
        value = np.array(args[index])
        padded = ~mask
        value[padded] = rng.uniform(-50, 50, value[padded].shape).astype(value.dtype)
        args[index] = value
    return args, mask


MASKED = [name for name in LAYERS if name in CASES and CASES[name].mask is not None]


@pytest.mark.parametrize("name", MASKED)
def test_padded_positions_change_no_output(name):
    case = _case(name)
    layer = getattr(videotag.layers, name)(**case.kwargs)
    args, mask = _with_garbage(case, np.random.default_rng(1))
    assert not np.array_equal(args[case.padded[0]], case.args[case.padded[0]])
    modes = [False, True] if case.training_mask else [False]
    for training in modes:
        clean = _flat(_call(layer, case, training=training))
        dirty = _flat(_call(layer, case, args=args, training=training))
        if case.padded_outputs == "ignore":  # per-frame outputs: the valid frames count
            clean = [x[mask] for x in clean]
            dirty = [x[mask] for x in dirty]
        _assert_same(dirty, clean, rtol=1e-5, atol=1e-5)
