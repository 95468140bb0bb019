"""What videotag needs from Keras beyond its public API, checked so that a Keras
release that changes it fails here, naming the hook.

One private hook remains: `ReducedGradientsAdam` (videotag/training/step.py), and
`ReducedGradientsAdamW` and `ReducedGradientsRMSprop` with it, override the
TensorFlow optimizer's `_all_reduce_sum_gradients`, because Keras 3
offers no public way to apply gradients already summed over replicas (its
`apply()` sums them again). Per-variable learning rates
(videotag/training/learning_rates.py) override the public `update_step` and call
the private `_get_variable_index`, as Keras's own update steps do. The fused Adam
update (`ReducedGradientsAdam.update_step`) reads Adam's private slot lists
`_momentums` and `_velocities`. The batch norm of masked frames and the walk over
nested layers use public APIs only; they are checked against Keras here.
"""

import importlib
import inspect
import pkgutil

import keras
import numpy as np
import pytest
import tensorflow as tf

import videotag
from tests.tiny_models import ZOO, check_registered, tiny_model_config
from videotag.training.learning_rates import LearningRateMultipliers
from videotag.layers import MaskedBatchNormalization
from videotag.training.distribution import nested_layers, set_sync_batch_norm
from videotag.training.step import OPTIMIZER_CLASSES, ReducedGradientsAdam

# (class of videotag, private Keras method it overrides): every such override
ALLOWED_PRIVATE_OVERRIDES = {(name, "_all_reduce_sum_gradients") for name in (
    "ReducedGradientsAdam", "ReducedGradientsAdamW", "ReducedGradientsRMSprop")}


def test_the_optimizer_hook_all_reduce_sum_gradients_is_still_there():
    hook = "_all_reduce_sum_gradients"
    where = f"Keras {keras.__version__}: the private hook Optimizer.{hook}"
    owners = [c for c in keras.optimizers.Adam.__mro__ if hook in vars(c)]
    assert owners, (f"{where} is gone; videotag.training.step.ReducedGradientsAdam overrides "
                    "it to keep Keras from summing the already summed gradients again")
    owner = owners[0]
    params = list(inspect.signature(vars(owner)[hook]).parameters)
    assert params == ["self", "grads_and_vars"], (
        f"{where} ({owner.__module__}.{owner.__name__}) takes {params} now, "
        "not (self, grads_and_vars)")
    callers = [c for c in keras.optimizers.Adam.__mro__ if "_backend_update_step" in vars(c)]
    assert callers and f"self.{hook}(" in inspect.getsource(vars(callers[0])["_backend_update_step"]), (
        f"{where} is no longer what the TensorFlow optimizer's update step calls to sum "
        "the gradients over replicas: check videotag.training.step.ReducedGradientsAdam")
    # ours is the one each optimizer's update step now finds, and it sums nothing
    for ours, plain in OPTIMIZER_CLASSES.values():
        assert [c for c in ours.__mro__ if hook in vars(c)][0] is ours
        assert ours.__mro__[1:3] == (LearningRateMultipliers, plain)  # every optimizer scales
        pairs = [("g", "v")]
        assert ours(0.1)._all_reduce_sum_gradients(iter(pairs)) == pairs


def test_learning_rate_multipliers_scale_each_variable_s_update():
    lookup = "_get_variable_index"
    where = f"Keras {keras.__version__}: the private lookup Optimizer.{lookup}"
    assert callable(getattr(keras.optimizers.Adam, lookup, None)), (
        f"{where} is gone; videotag.training.learning_rates.LearningRateMultipliers uses it "
        "to find a variable's multiplier in update_step")
    assert f"self.{lookup}(variable)" in inspect.getsource(keras.optimizers.Adam.update_step), (
        f"{where} is no longer how Adam's update_step finds a variable's slots")
    assert list(inspect.signature(keras.optimizers.Adam.update_step).parameters) == [
        "self", "gradient", "variable", "learning_rate"]
    assert ReducedGradientsAdam.__mro__[1] is LearningRateMultipliers
    rng = np.random.default_rng(0)
    start = [rng.normal(size=(3, 2)).astype("float32"), rng.normal(size=4).astype("float32")]
    grads = [[rng.normal(size=v.shape).astype("float32") for v in start] for _ in range(3)]
    ours = [keras.Variable(v) for v in start]
    scaled = ReducedGradientsAdam(0.01)
    scaled.build(ours)
    scaled.set_learning_rate_multipliers([0.1, 1.0])
    plain = [keras.Variable(v) for v in start]
    slow, fast = keras.optimizers.Adam(0.001), keras.optimizers.Adam(0.01)
    for g in grads:
        scaled.apply(g, ours)
        slow.apply([g[0]], [plain[0]])
        fast.apply([g[1]], [plain[1]])
    for a, b, s in zip(ours, plain, start):
        assert not np.allclose(a.numpy(), s)
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6, atol=1e-7)



def test_the_fused_adam_update_finds_keras_s_slots_and_matches_keras():
    where = f"Keras {keras.__version__}: Adam's private slot lists _momentums/_velocities"
    variables = [keras.Variable(np.ones((3, 2), "float32")), keras.Variable(np.zeros(4, "float32"))]
    plain = keras.optimizers.Adam(0.01)
    plain.build(variables)
    for slots in ("_momentums", "_velocities"):
        held = getattr(plain, slots, None)
        assert isinstance(held, list) and len(held) == len(variables), (
            f"{where}: {slots} is gone or no longer one slot per variable; "
            "videotag.training.step.ReducedGradientsAdam.update_step reads it")
        for slot, variable in zip(held, variables):
            assert slot.shape == variable.shape and hasattr(slot.value, "handle"), (
                f"{where}: {slots} no longer holds the variables' slots as resource variables")
    # the fused kernel (ResourceApplyAdam) and Keras's own update, step by step
    rng = np.random.default_rng(1)
    start = [rng.normal(size=(3, 2)).astype("float32"), rng.normal(size=4).astype("float32")]
    ours, theirs = [keras.Variable(v) for v in start], [keras.Variable(v) for v in start]
    fused, keras_adam = ReducedGradientsAdam(0.01), keras.optimizers.Adam(0.01)
    for _ in range(4):
        grads = [rng.normal(size=v.shape).astype("float32") for v in start]
        fused.apply(grads, ours)
        keras_adam.apply(grads, theirs)
    for a, b, s in zip(ours, theirs, start):
        assert np.abs(a.numpy() - s).max() > 1e-3
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6, atol=1e-7)
    # the kernel takes 1 - beta_2 from float32 beta_2 (as TF1's AdamOptimizer did),
    # Keras rounds 1 - 0.999 from float64: second moments 1.3e-5 apart, relatively
    for name, rtol in (("_momentums", 1e-6), ("_velocities", 2e-5)):
        for a, b in zip(getattr(fused, name), getattr(keras_adam, name)):
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=rtol, atol=1e-9)

def _videotag_classes():
    for package in (videotag.layers, videotag.models, videotag.training):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            module = importlib.import_module(info.name)
            for _, cls in inspect.getmembers(module, inspect.isclass):
                if cls.__module__ == module.__name__:
                    yield cls


def test_no_other_private_keras_method_is_overridden():
    overrides = set()
    for cls in _videotag_classes():
        keras_bases = [b for b in cls.__mro__[1:] if b.__module__.split(".")[0] == "keras"]
        for name in vars(cls):
            if name.startswith("_") and not name.startswith("__"):
                if any(name in vars(b) for b in keras_bases):
                    overrides.add((cls.__name__, name))
    assert overrides == ALLOWED_PRIVATE_OVERRIDES, (
        f"private Keras methods overridden: {sorted(overrides - ALLOWED_PRIVATE_OVERRIDES)} "
        "(use the public API, or add the hook to this test with a check of its own)")


@pytest.mark.parametrize("dtype", ["float32", "mixed_float16"])
def test_masked_batch_norm_trains_exactly_like_keras(dtype):
    """Per replica, MaskedBatchNormalization's own moments are Keras's, to the bit."""
    rng = np.random.default_rng(0)
    x = rng.normal(2.0, 3.0, (4, 7, 5)).astype("float32")
    mask = np.arange(7)[None] < np.array([7, 3, 1, 5])[:, None]
    ours = MaskedBatchNormalization(momentum=0.9, dtype=dtype)
    theirs = keras.layers.BatchNormalization(momentum=0.9, dtype=dtype)
    for layer in (ours, theirs):
        layer.build(x.shape)
    weights = [rng.normal(size=w.shape).astype("float32") for w in theirs.get_weights()]
    weights[3] = np.abs(weights[3])  # a variance
    for layer in (ours, theirs):
        layer.set_weights(weights)
    for training, m in [(True, mask), (True, None), (False, mask), (False, None)]:
        a = np.asarray(ours(x, training=training, mask=m))
        b = np.asarray(theirs(x, training=training, mask=m))
        np.testing.assert_array_equal(a, b, err_msg=f"training={training}, mask={m is not None}")
        for wa, wb in zip(ours.get_weights(), theirs.get_weights()):
            np.testing.assert_array_equal(wa, wb)
    # padding does not count: garbage there changes neither outputs nor statistics
    noisy = np.where(mask[..., None], x, 1e4).astype("float32")
    before = ours.get_weights()
    a = np.asarray(ours(x, training=True, mask=mask))
    after = ours.get_weights()
    ours.set_weights(before)
    b = np.asarray(ours(noisy, training=True, mask=mask))
    np.testing.assert_array_equal(a[mask], b[mask])
    for wa, wb in zip(after, ours.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    if "renorm" in inspect.signature(keras.layers.BatchNormalization).parameters:
        with pytest.raises(ValueError, match="does not support renorm"):
            MaskedBatchNormalization(renorm=True)


@pytest.mark.parametrize("lengths", [[7, 3, 1, 5], [7, 7, 7, 7]])
def test_masked_batch_norm_gradient_is_that_of_its_moments_ops(lengths):
    """The hand-written training gradient (per replica) is TensorFlow's gradient of the
    same function (Keras's masked moments, then the normalization), padding included:
    garbage frames and a gradient arriving on them."""
    rng = np.random.default_rng(2)
    shape = (4, 7, 6)
    mask = np.arange(7)[None] < np.array(lengths)[:, None]
    x = np.where(mask[..., None], rng.normal(2.0, 3.0, shape), 40.0).astype("float32")
    upstream = rng.normal(size=shape).astype("float32")
    layer = MaskedBatchNormalization()
    layer.build(shape)
    layer.gamma.assign(rng.normal(1.0, 0.5, shape[-1]).astype("float32"))
    layer.beta.assign(rng.normal(size=shape[-1]).astype("float32"))

    def autodiff(x):
        mean, variance = layer.masked_moments(x, mask)
        return keras.ops.batch_normalization(x, mean, variance, axis=-1, offset=layer.beta,
                                             scale=layer.gamma, epsilon=layer.epsilon)

    results = []
    for forward in (lambda x: layer(x, training=True, mask=mask), autodiff):
        x_in = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(x_in)
            y = forward(x_in)
            loss = tf.reduce_sum(y * upstream)
        results.append([np.asarray(v) for v in
                        [y, *tape.gradient(loss, [x_in, layer.gamma, layer.beta])]])
    (y, dx, dgamma, dbeta), (y_ref, dx_ref, dgamma_ref, dbeta_ref) = results
    np.testing.assert_array_equal(y, y_ref)
    for name, got, want in [("x", dx, dx_ref), ("gamma", dgamma, dgamma_ref),
                            ("beta", dbeta, dbeta_ref)]:
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max(),
                                   err_msg=name)
    # the padded frames get only the direct term gamma * r * dy
    inverse = 1 / np.sqrt(np.asarray(layer.masked_moments(x, mask)[1]) + layer.epsilon)
    padded = ~mask
    np.testing.assert_allclose(dx[padded], (upstream * np.asarray(layer.gamma) * inverse)[padded],
                               rtol=1e-5)


def test_masked_batch_norm_moments_without_replicas_are_the_valid_entries():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 6, 4)).astype("float32")
    mask = np.arange(6)[None] < np.array([6, 2, 4])[:, None]
    layer = MaskedBatchNormalization(synchronized=True)  # no replica context: per call
    layer.build(x.shape)
    mean, variance = (np.asarray(v) for v in layer.masked_moments(x, mask))
    valid = x[mask]
    np.testing.assert_allclose(mean, valid.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(variance, valid.var(0), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", ZOO)
def test_sync_batch_norm_reaches_every_batch_norm_of_the_model(name):
    check_registered(name)
    model = videotag.build_model(tiny_model_config(name))
    layers = nested_layers(model)
    assert len({id(layer) for layer in layers}) == len(layers)
    assert all(layer is not model for layer in layers)
    norms = [layer for layer in layers if isinstance(layer, keras.layers.BatchNormalization)]
    # every moving mean of the model belongs to one of the batch norms found
    moving = {id(w) for w in model.weights if w.path.endswith("moving_mean")}
    assert {id(layer.moving_mean) for layer in norms} == moving
    set_sync_batch_norm(model, True)
    assert all(layer.synchronized for layer in norms)
    set_sync_batch_norm(model, False)
    assert not any(layer.synchronized for layer in norms)
