"""The serving graph: record parsing, validation and outputs, in TensorFlow ops only.

Everything here is traced into the SavedModel, so TF Serving runs it without videotag
(no Python, no custom ops: ParseSequenceExampleV2, DecodeRaw, UnicodeTranscode, TopKV2,
Assert and the model's own ops).

Signatures (every tensor batch-first, B = videos of the request):

- `serving_default`: `example_bytes` string [B], serialized YT8M frame-level
  SequenceExamples (context id, and title when the model reads titles; labels and
  category are ignored).
- `predict_dense`: each frame feature uint8 [B, T, size], `num_frames` int32 [B]
  and, when the model reads titles, `title` string [B] (UTF-8).

Outputs, by the model's heads:

- `video_id` string [B] (`serving_default` only);
- with a `tags` head: `class_indexes` int32 [B, k], `predictions` float32 [B, k]
  (the k highest tag probabilities, descending) and `class_names` string [B, k];
- with a `category` head: `category_id` int32 [B] (the most probable category),
  `category_score` float32 [B] (its probability) and `category_name` string [B];
- `embedding` float32 [B, d]: the video vector the heads see.

A malformed request fails with InvalidArgument naming the record index (or row) and
the problem, and the next request is served normally.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import tensorflow as tf

from videotag.data import schema
from videotag.errors import ModelError

EXAMPLES_INPUT = "example_bytes"
# At most this many bad records are described in one error message.
_MAX_REPORTED = 3


def model_io_names(model) -> tuple:
    """(input names, output names) of a Keras model with dict inputs and outputs."""
    names = []
    for what, structure in (("inputs", model.input), ("outputs", model.output)):
        if not isinstance(structure, dict):
            raise ModelError(
                f"model '{model.name}' has unnamed {what}: export needs a model whose "
                f"{what} are a dict by name"
            )
        names.append(list(structure))
    return tuple(names)


class ServingModule(tf.Module):
    """Wraps a videotag Keras model with the serving signatures.

    `serve_examples` and `serve_dense` (the two signatures) exist for frame-level
    data; `outputs` (the heads' outputs for parsed inputs) for any data, which is
    what prediction from a model directory uses.

    Args:
        model: the Keras model. Inputs by name: frame features uint8 [B, T, size],
            `num_frames` int32 [B], optionally `title` string [B]. Outputs by name:
            `tags` and/or `category` probabilities, and `embedding`.
        cfg: the run's config (data schema; export.top_k).
        class_names: one name per tag class (needed when the model has `tags`).
        category_names: one name per category (needed when it has `category`).
        top_k: tags returned per video; default `cfg.export.top_k` (at most the
            number of classes).
    """

    def __init__(self, model, cfg, class_names: Optional[Sequence[str]] = None,
                 category_names: Optional[Sequence[str]] = None, top_k: Optional[int] = None):
        super().__init__(name="videotag_serving")
        data = cfg.data
        self.model = model
        self._data = data
        inputs, outputs = model_io_names(model)
        known = set(data.feature_names) | {schema.NUM_FRAMES_KEY, schema.TITLE_KEY}
        unknown = [n for n in inputs if n not in known]
        if unknown:
            raise ModelError(
                f"model input '{unknown[0]}' is not a data feature (data.feature_names: "
                f"{', '.join(data.feature_names)}), '{schema.NUM_FRAMES_KEY}' or "
                f"'{schema.TITLE_KEY}': the export cannot feed it"
            )
        self._features = [(n, s) for n, s in zip(data.feature_names, data.feature_sizes)
                          if n in inputs]
        # video-level models (mean features) get `outputs` but no signatures
        self.frame_level = data.record_type == "frame"
        if not self._features or (self.frame_level and schema.NUM_FRAMES_KEY not in inputs):
            raise ModelError("the model must take the data's features (and 'num_frames' "
                             "for frame-level data)")
        self.has_title = schema.TITLE_KEY in inputs
        self.has_tags = "tags" in outputs
        self.has_category = "category" in outputs
        if "embedding" not in outputs or not (self.has_tags or self.has_category):
            raise ModelError("the model must output 'embedding' and 'tags' and/or 'category'")
        self.input_names = inputs
        if self.has_tags:
            if class_names is None or len(class_names) != data.num_classes:
                raise ModelError(f"export needs {data.num_classes} class names")
            self.top_k = min(top_k or cfg.export.top_k, data.num_classes)
            self.class_names = tf.constant(list(class_names), dtype=tf.string)
        if self.has_category:
            if category_names is None or len(category_names) != data.num_categories:
                raise ModelError(f"export needs {data.num_categories} category names")
            self.category_names = tf.constant(list(category_names), dtype=tf.string)

        if self.frame_level:
            self.serve_examples = tf.function(
                self._serve_examples,
                input_signature=[tf.TensorSpec([None], tf.string, name=EXAMPLES_INPUT)],
            )
            self.serve_dense = tf.function(self._serve_dense, input_signature=self.dense_specs())

    @property
    def features(self) -> List[tuple]:
        """(name, bytes per frame) of the frame features the model takes."""
        return list(self._features)

    # --- signatures ---------------------------------------------------------------

    def dense_specs(self) -> List[tf.TensorSpec]:
        """The `predict_dense` inputs, in order: features, num_frames, [title]."""
        specs = [tf.TensorSpec([None, None, size], tf.uint8, name=name)
                 for name, size in self._features]
        specs.append(tf.TensorSpec([None], tf.int32, name=schema.NUM_FRAMES_KEY))
        if self.has_title:
            specs.append(tf.TensorSpec([None], tf.string, name=schema.TITLE_KEY))
        return specs

    def outputs(self, inputs: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
        """The signature outputs (but `video_id`) for checked model inputs."""
        out = self.model({k: inputs[k] for k in self.input_names}, training=False)
        result = {}
        if self.has_tags:
            scores, indexes = tf.math.top_k(tf.cast(out["tags"], tf.float32), k=self.top_k)
            result["class_indexes"] = tf.cast(indexes, tf.int32)
            result["predictions"] = scores
            result["class_names"] = tf.gather(self.class_names, indexes)
        if self.has_category:
            probs = tf.cast(out["category"], tf.float32)
            best = tf.math.argmax(probs, axis=-1, output_type=tf.int32)
            result["category_id"] = best
            result["category_score"] = tf.gather(probs, best, batch_dims=1)
            result["category_name"] = tf.gather(self.category_names, best)
        result["embedding"] = tf.cast(out["embedding"], tf.float32)
        return result

    def _serve_dense(self, *tensors):
        names = [s.name for s in self.dense_specs()]
        inputs = dict(zip(names, tensors))
        steps = tf.reduce_min([tf.shape(inputs[n])[1] for n, _ in self._features])
        num_frames = inputs[schema.NUM_FRAMES_KEY]
        ok = (num_frames >= 1) & (num_frames <= steps)
        rows = tf.boolean_mask(tf.range(tf.size(num_frames)), ~ok)[:_MAX_REPORTED]
        message = tf.strings.join([
            "bad request: num_frames must be between 1 and ", tf.strings.as_string(steps),
            " (the frames per video sent): ", tf.strings.reduce_join(tf.strings.join([
                "row ", tf.strings.as_string(rows), " has ",
                tf.strings.as_string(tf.gather(num_frames, rows))]), separator=", ")])
        checks = [tf.debugging.Assert(tf.reduce_all(ok), [message], summarize=1)]
        if self.has_title:
            title_ok = _valid_utf8(inputs[schema.TITLE_KEY])
            bad_rows = tf.boolean_mask(tf.range(tf.size(title_ok)), ~title_ok)[:_MAX_REPORTED]
            checks.append(tf.debugging.Assert(tf.reduce_all(title_ok), [tf.strings.join([
                "bad request: title is not valid UTF-8 text in rows ",
                tf.strings.reduce_join(tf.strings.as_string(bad_rows), separator=", ")])],
                summarize=1))
        with tf.control_dependencies(checks):
            used = tf.minimum(steps, self._data.max_frames)
            for name, _ in self._features:
                inputs[name] = tf.identity(inputs[name][:, :used])
            inputs[schema.NUM_FRAMES_KEY] = tf.minimum(num_frames, used)
        return self.outputs(inputs)

    def _serve_examples(self, example_bytes):
        inputs, video_id = self.parse_records(example_bytes)
        result = self.outputs(inputs)
        result["video_id"] = video_id
        return result

    # --- parsing --------------------------------------------------------------------

    def parse_records(self, example_bytes: tf.Tensor):
        """Parses and checks serialized SequenceExamples [B].

        Returns:
            (model inputs by name, video ids string [B]).

        Raises (when run):
            InvalidArgumentError: a record cannot be parsed (its index is named by the
            parser: "example id: record i"), or is malformed: no id, no frames, a frame
            of the wrong byte length, a title that is not one UTF-8 string.
        """
        data = self._data
        count = tf.shape(example_bytes)[0]
        names = tf.strings.join(["record ", tf.strings.as_string(tf.range(count))])
        context_spec = {data.id_key: tf.io.VarLenFeature(tf.string)}
        if self.has_title:
            context_spec[data.title_key] = tf.io.VarLenFeature(tf.string)
        context, lists, lengths = tf.io.parse_sequence_example(
            example_bytes,
            context_features=context_spec,
            sequence_features={
                name: tf.io.FixedLenSequenceFeature([], tf.string, allow_missing=True)
                for name, _ in self._features
            },
            example_names=names,
        )
        problems = []  # (bad [B], message [B]) pairs

        video_id, id_count = _first_value(context[data.id_key], count)
        problems.append((tf.not_equal(id_count, 1), tf.where(
            id_count == 0, f"context key {data.id_key} is missing",
            f"context key {data.id_key} holds more than one value")))

        num_frames = tf.reduce_min(
            tf.stack([tf.cast(lengths[n], tf.int32) for n, _ in self._features]), axis=0)
        problems.append((num_frames < 1, tf.fill([count], "the video has no frames")))

        for name, size in self._features:
            # one padding column: argmax needs a non-empty axis when no record has frames
            byte_lengths = tf.pad(tf.strings.length(lists[name]), [[0, 0], [0, 1]])
            present = tf.sequence_mask(lengths[name], tf.shape(byte_lengths)[1])
            wrong = present & tf.not_equal(byte_lengths, size)
            first = tf.math.argmax(tf.cast(wrong, tf.int32), axis=1, output_type=tf.int32)
            problems.append((tf.reduce_any(wrong, axis=1), tf.strings.join([
                f"feature list {name}: frame ", tf.strings.as_string(first), " has ",
                tf.strings.as_string(tf.gather(byte_lengths, first, batch_dims=1)),
                f" bytes, expected {size}"])))

        inputs = {}
        if self.has_title:
            title, title_count = _first_value(context[data.title_key], count)
            title_ok = _valid_utf8(title)
            problems.append((title_count > 1, tf.fill(
                [count], f"context key {data.title_key} holds more than one value")))
            problems.append((~title_ok, tf.fill(
                [count], f"context key {data.title_key} is not valid UTF-8 text")))
            inputs[schema.TITLE_KEY] = title

        check = _assert_good(problems, video_id)
        with tf.control_dependencies([check]):
            num_frames = tf.minimum(num_frames, self._data.max_frames)
            steps = tf.reduce_max(tf.concat([num_frames, [0]], 0))
        inputs[schema.NUM_FRAMES_KEY] = num_frames
        for name, size in self._features:
            inputs[name] = tf.io.decode_raw(lists[name][:, :steps], tf.uint8, fixed_length=size)
        return inputs, video_id


def _first_value(sparse: tf.SparseTensor, count: tf.Tensor):
    """(first value of each row or "", number of values of each row) of a [B, ?] sparse."""
    dense = tf.sparse.to_dense(sparse, default_value="")
    first = tf.pad(dense, [[0, 0], [0, 1]])[:, 0]
    rows = tf.cast(sparse.indices[:, 0], tf.int32)
    return first, tf.math.bincount(rows, minlength=count, maxlength=count, dtype=tf.int32)


def _valid_utf8(text: tf.Tensor) -> tf.Tensor:
    """True where `text` is valid UTF-8: a lossy transcode leaves valid text unchanged."""
    return tf.equal(tf.strings.unicode_transcode(
        text, "UTF-8", "UTF-8", errors="replace", replacement_char=0xFFFD), text)


def _assert_good(problems, video_id):
    """An Assert that fails, naming the first bad records and their problems."""
    bad = tf.stack([p[0] for p in problems], axis=1)  # [B, P]
    messages = tf.stack([p[1] for p in problems], axis=1)
    details = tf.strings.reduce_join(tf.where(bad, messages + "; ", ""), axis=1)
    details = tf.strings.regex_replace(details, "; $", "")
    any_bad = tf.reduce_any(bad, axis=1)
    index = tf.boolean_mask(tf.range(tf.size(any_bad)), any_bad)
    ids = tf.boolean_mask(video_id, any_bad)
    ids = tf.where(tf.equal(ids, ""), "no id", tf.strings.join(["id ", ids]))
    described = tf.strings.join([
        "record ", tf.strings.as_string(index), " (", ids, "): ",
        tf.boolean_mask(details, any_bad)])
    total = tf.size(index)
    message = tf.strings.join([
        "bad request: ", tf.strings.as_string(total), " malformed record(s): ",
        tf.strings.reduce_join(described[:_MAX_REPORTED], separator=" | "),
        tf.where(total > _MAX_REPORTED, " | ...", "")])
    return tf.debugging.Assert(tf.equal(total, 0), [message], summarize=1)
