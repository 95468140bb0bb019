"""Where training runs: one device, every device of a machine, or a cluster.

One code path serves the three cases of `train.distribution`: the trainer always runs
its step through a `tf.distribute.Strategy` (TensorFlow's default strategy when
there is no distribution), so only the strategy changes.

- "none": the default strategy, one replica.
- "mirrored": `tf.distribute.MirroredStrategy` over every GPU of the machine, or,
  without GPUs, over every logical CPU device (see `split_host_cpu`).
- "multi_worker": `tf.distribute.MultiWorkerMirroredStrategy` over the cluster that
  the `TF_CONFIG` environment variable describes; it must be created before
  TensorFlow starts its devices, so `train()` creates it first.

Batches follow global-batch semantics: `train.batch_size` is the batch of one step
over all replicas. Each worker reads its own share of the shards (whole files when
there are at least as many files as workers, else every n-th record of each file),
makes batches of `batch_size / workers` videos, and splits every batch into one
piece per local replica, so that one step sees the same videos on 1 or N replicas.
"""

from __future__ import annotations

import json
import os
from typing import Callable, List

import tensorflow as tf

from videotag.config import TrainConfig
from videotag.errors import ConfigError


def split_host_cpu(num_devices: int) -> None:
    """Splits the host CPU into `num_devices` logical devices (to try distribution
    without GPUs). Must run before TensorFlow initialises its devices.

    Raises:
        ConfigError: TensorFlow's devices are already initialised.
    """
    cpus = tf.config.list_physical_devices("CPU")
    try:
        tf.config.set_logical_device_configuration(
            cpus[0], [tf.config.LogicalDeviceConfiguration() for _ in range(num_devices)])
    except RuntimeError as exc:
        raise ConfigError(
            f"cannot split the CPU into {num_devices} devices once TensorFlow has started "
            f"its devices ({exc}); do it first thing in the process"
        ) from None


def make_strategy(train_cfg: TrainConfig) -> tf.distribute.Strategy:
    """The strategy `train.distribution` names.

    Raises:
        ConfigError: multi_worker without TF_CONFIG, or created too late.
    """
    kind = train_cfg.distribution
    if kind == "none":
        return tf.distribute.get_strategy()
    if kind == "mirrored":
        if tf.config.list_logical_devices("GPU"):
            return tf.distribute.MirroredStrategy()
        return tf.distribute.MirroredStrategy(
            [d.name for d in tf.config.list_logical_devices("CPU")])
    if not os.environ.get("TF_CONFIG"):
        raise ConfigError(
            "train.distribution=multi_worker needs the TF_CONFIG environment variable "
            "(the cluster's workers and this process's task)"
        )
    try:
        json.loads(os.environ["TF_CONFIG"])
    except ValueError as exc:
        raise ConfigError(f"TF_CONFIG is not valid JSON: {exc}") from None
    try:
        return tf.distribute.MultiWorkerMirroredStrategy()
    except (RuntimeError, ValueError) as exc:
        raise ConfigError(
            f"cannot start multi-worker training: {exc} (the strategy must be created "
            "before TensorFlow runs anything in the process)"
        ) from None


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes checkpoints, logs and the final model."""
    return bool(strategy.extended.should_checkpoint)


def barrier(strategy: tf.distribute.Strategy) -> None:
    """Returns when every worker has reached it (a no-op on one machine)."""
    workers_sum(strategy, 1.0)


_SUMS = {}


def workers_sum(strategy: tf.distribute.Strategy, value: float) -> float:
    """The sum of `value` over every replica of every worker, once all workers have
    called it; on one machine, `value` itself (no collective is run). Workers use it
    to agree (a stop requested on any worker, a lock the chief could not take)."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return value
    total = _SUMS.get(id(strategy))
    if total is None:

        @tf.function
        def total(v):
            per_replica = strategy.run(lambda: tf.identity(v))
            return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

        _SUMS[id(strategy)] = total
    return float(total(tf.constant(value, tf.float32)))


def chief_decides(strategy: tf.distribute.Strategy, flag: bool) -> bool:
    """The chief worker's `flag`, on every worker (an all-reduce among the workers,
    which every worker must reach); `flag` itself on one machine."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return bool(flag)
    value = 1.0 if flag and is_chief(strategy) else 0.0

    @tf.function
    def total():
        votes = strategy.run(lambda: tf.constant(value))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, votes, axis=None)

    return float(total()) > 0


def set_sync_batch_norm(model, synchronized: bool) -> None:
    """Turns synchronised batch-norm statistics (over all replicas) on or off in
    every batch-norm layer of `model`, nested layers included (Keras's public
    `synchronized` attribute)."""
    import keras

    for layer in nested_layers(model):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.synchronized = synchronized


def nested_layers(model) -> List:
    """Every layer inside `model` (not the model itself), at any depth, once each.

    Walks the layers' attributes (a layer, or a list, tuple or dict of layers),
    starting from `model.layers`: plain Python, so no private Keras API is needed
    and the layers that custom layers hold as attributes are found too.
    """
    import keras

    found, seen = [], {id(model)}
    pending = list(model.layers)
    while pending:
        layer = pending.pop()
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        found.append(layer)
        for value in vars(layer).values():
            items = value.values() if isinstance(value, dict) else (
                value if isinstance(value, (list, tuple)) else [value])
            pending.extend(v for v in items if isinstance(v, keras.layers.Layer))
    return found


def distributed_batches(strategy: tf.distribute.Strategy, global_batch: int,
                        make_batches: Callable[[int, int, int], tf.data.Dataset],
                        skip_steps: int = 0, device_prefetch: int = 2):
    """A distributed dataset of global batches, split over the replicas.

    A worker's batch is split into its local replicas' pieces by slices along
    the batch axis (TensorFlow's slice of the first axis shares the batch's
    buffer when the piece starts aligned, as the frames' rows of 1024 or 128
    bytes per frame do: no host copy of the frames). On GPUs each piece is
    copied to its replica's device ahead of the step (`device_prefetch` pieces
    per device: `tf.distribute.InputOptions(experimental_fetch_to_device)` with
    several replicas, `tf.data.experimental.prefetch_to_device` with one), so
    the step never waits for a host-to-device copy; on CPUs the batches stay
    where they are.

    Args:
        strategy: the strategy.
        global_batch: videos per step over all replicas.
        make_batches: `(num_shards, shard_index, batch_size) -> dataset` of one
            worker's batches of (inputs, targets).
        skip_steps: steps to skip at the start (resuming inside an epoch).
        device_prefetch: batches held ahead on each GPU (`train.device_prefetch`);
            0: none.

    Raises:
        ConfigError: the global batch does not divide by the number of replicas.
    """
    replicas = strategy.num_replicas_in_sync
    if global_batch % replicas:
        raise ConfigError(
            f"config key 'train.batch_size' ({global_batch}) must divide by the number of "
            f"replicas ({replicas})"
        )

    def dataset_fn(context: tf.distribute.InputContext) -> tf.data.Dataset:
        local = context.num_replicas_in_sync // context.num_input_pipelines
        per_worker = context.get_per_replica_batch_size(global_batch) * local
        ds = make_batches(context.num_input_pipelines, context.input_pipeline_id, per_worker)
        if skip_steps:
            ds = ds.skip(skip_steps)
        if local > 1:
            # a batch smaller than the number of replicas (the end of an epoch) would
            # leave a replica without videos
            ds = ds.filter(lambda inputs, targets: _batch_size(inputs) >= local)
            ds = ds.flat_map(lambda inputs, targets: _split((inputs, targets), local))
        ds = ds.prefetch(tf.data.AUTOTUNE)
        if device_prefetch and gpus and not mirrored:
            ds = ds.apply(tf.data.experimental.prefetch_to_device(gpus[0], device_prefetch))
        return ds

    gpus = [d.name for d in tf.config.list_logical_devices("GPU")]
    # the default strategy (train.distribution "none") ignores input options
    mirrored = isinstance(strategy, (tf.distribute.MirroredStrategy,
                                     tf.distribute.MultiWorkerMirroredStrategy))
    options = None
    if gpus and mirrored:
        options = tf.distribute.InputOptions(
            experimental_fetch_to_device=bool(device_prefetch),
            experimental_per_replica_buffer_size=max(1, device_prefetch))
    return strategy.distribute_datasets_from_function(dataset_fn, options=options)


def _batch_size(element) -> tf.Tensor:
    return tf.shape(tf.nest.flatten(element)[0])[0]


def _split(element, parts: int) -> tf.data.Dataset:
    """One batch -> `parts` consecutive pieces whose sizes differ by at most one."""
    n = _batch_size(element)
    sizes = n // parts + tf.cast(tf.range(parts) < n % parts, tf.int32)
    starts = tf.cumsum(sizes, exclusive=True)
    return tf.data.Dataset.from_tensor_slices((starts, sizes)).map(
        lambda start, size: tf.nest.map_structure(lambda t: t[start:start + size], element))
