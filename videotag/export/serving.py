"""The serving graph: record parsing, validation and outputs, in TensorFlow ops only.

Everything here is traced into the SavedModel, so TF Serving runs it without videotag
(no Python, no custom ops: the record parser's ParseSequenceExampleV2, DecodeRaw,
UnicodeTranscode, ragged and segment ops, then TopKV2, Assert and the model's own
ops). Records are parsed and checked by the same parser as the tf.data pipeline's
(`videotag.data.parsing`), with the same messages.

Signatures (every tensor batch-first, B = videos of the request):

- `serving_default`: `example_bytes` string [B], serialized YT8M records of the
  model's kind: frame-level SequenceExamples, or for a video-level model (LOGISTIC,
  MOE) video-level Examples (context id, and title when the model reads titles;
  labels and category are ignored).
- `predict_dense`: each frame feature uint8 [B, T, size], `num_frames` int32 [B]
  and, when the model reads titles, `title` string [B] (UTF-8); for a video-level
  model each mean feature float32 [B, size] (and `title`).
- `predict_segments` (frame-level models with a `tags` head): `example_bytes` as
  `serving_default`; the outputs of `serving_default` and, for every segment of
  every video (`data.segment_size` frames, each scored on its window: see
  `videotag.data.segments`), its top k segment classes.

Outputs, by the model's heads:

- `video_id` string [B] (`serving_default` only);
- with a `tags` head: `class_indexes` int32 [B, k], `predictions` float32 [B, k]
  (the k highest tag probabilities, descending) and `class_names` string [B, k];
- with a `category` head: `category_id` int32 [B] (the most probable category),
  `category_score` float32 [B] (its probability) and `category_name` string [B];
- `embedding` float32 [B, d]: the video vector the heads see.
- `predict_segments` only, S = the most segments of a video of the request:
  `num_segments` int32 [B]; `segment_start_times` and `segment_end_times` int32
  [B, S] (seconds; -1 past a video's segments); `segment_class_indexes` int32
  [B, S, k] (-1 past them), `segment_predictions` float32 [B, S, k] (0 past them)
  and `segment_class_names` string [B, S, k] ("" past them): the k most probable
  segment classes of each segment, descending.

A malformed request fails with InvalidArgument naming the record index (or row) and
the problem, and the next request is served normally.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import tensorflow as tf

import numpy as np

from videotag.data import schema
from videotag.data.frames import decode_frames
from videotag.data.parsing import RecordParser, valid_utf8
from videotag.data.segments import segment_probabilities
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

    `serve_examples` and `serve_dense` are the two signatures of every model, and
    `serve_segments` the third of a frame-level model with `tags`; `outputs` (the
    heads' outputs for parsed inputs) is also what prediction from a model
    directory uses.

    Args:
        model: the Keras model. Inputs by name: frame features uint8 [B, T, size]
            and `num_frames` int32 [B] (or, for video-level data, mean features
            float32 [B, size]), optionally `title` string [B]. Outputs by name:
            `tags` and/or `category` probabilities, and `embedding` (others, such
            as a mixture's `member_logits`, are not served).
        cfg: the run's config (data schema; export.top_k).
        class_names: one name per tag class (needed when the model has `tags`).
        category_names: one name per category (needed when it has `category`).
        top_k: tags returned per video (and per segment); default `cfg.export.top_k`
            (at most the number of classes, or of segment classes).
        segment_classes: the class ids segments are tagged with; default every
            class.
    """

    def __init__(self, model, cfg, class_names: Optional[Sequence[str]] = None,
                 category_names: Optional[Sequence[str]] = None, top_k: Optional[int] = None,
                 segment_classes: Optional[Sequence[int]] = None):
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
        # served records carry no targets: labels and category are not read
        self._parser = RecordParser(data, features=[n for n, _ in self._features],
                                    title=self.has_title, targets=False)
        if self.has_tags:
            if class_names is None or len(class_names) != data.num_classes:
                raise ModelError(f"export needs {data.num_classes} class names")
            self.top_k = min(top_k or cfg.export.top_k, data.num_classes)
            self.class_names = tf.constant(list(class_names), dtype=tf.string)
        if self.has_category:
            if category_names is None or len(category_names) != data.num_categories:
                raise ModelError(f"export needs {data.num_categories} category names")
            self.category_names = tf.constant(list(category_names), dtype=tf.string)

        self.serve_examples = tf.function(
            self._serve_examples,
            input_signature=[tf.TensorSpec([None], tf.string, name=EXAMPLES_INPUT)],
        )
        self.serve_dense = tf.function(
            self._serve_dense if self.frame_level else self._serve_means,
            input_signature=self.dense_specs())
        if self.frame_level and self.has_tags:
            classes = np.arange(data.num_classes) if segment_classes is None else segment_classes
            self.segment_classes = np.asarray(classes, np.int32)
            self.segment_top_k = min(top_k or cfg.export.top_k, len(self.segment_classes))
            self.serve_segments = tf.function(
                self._serve_segments,
                input_signature=[tf.TensorSpec([None], tf.string, name=EXAMPLES_INPUT)])

    @property
    def features(self) -> List[tuple]:
        """(name, size) of the features the model takes: bytes per frame of frame
        features, floats of video-level mean features."""
        return list(self._features)

    # --- signatures ---------------------------------------------------------------

    def dense_specs(self) -> List[tf.TensorSpec]:
        """The `predict_dense` inputs, in order: frame features and num_frames (or
        mean features), [title]."""
        if not self.frame_level:
            specs = [tf.TensorSpec([None, size], tf.float32, name=name)
                     for name, size in self._features]
            if self.has_title:
                specs.append(tf.TensorSpec([None], tf.string, name=schema.TITLE_KEY))
            return specs
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
        checks += self._title_checks(inputs)
        with tf.control_dependencies(checks):
            used = tf.minimum(steps, self._data.max_frames)
            for name, _ in self._features:
                inputs[name] = tf.identity(inputs[name][:, :used])
            inputs[schema.NUM_FRAMES_KEY] = tf.minimum(num_frames, used)
        return self.outputs(inputs)

    def _serve_means(self, *tensors):
        names = [s.name for s in self.dense_specs()]
        inputs = dict(zip(names, tensors))
        with tf.control_dependencies(self._title_checks(inputs)):
            inputs = {k: tf.identity(v) for k, v in inputs.items()}
        return self.outputs(inputs)

    def _title_checks(self, inputs) -> list:
        """Asserts that the dense request's titles (if the model reads them) are
        valid UTF-8, naming the bad rows."""
        if not self.has_title:
            return []
        title_ok = valid_utf8(inputs[schema.TITLE_KEY])
        bad_rows = tf.boolean_mask(tf.range(tf.size(title_ok)), ~title_ok)[:_MAX_REPORTED]
        return [tf.debugging.Assert(tf.reduce_all(title_ok), [tf.strings.join([
            "bad request: title is not valid UTF-8 text in rows ",
            tf.strings.reduce_join(tf.strings.as_string(bad_rows), separator=", ")])],
            summarize=1)]

    def segment_outputs(self, inputs: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
        """The `predict_segments` outputs of its own (see the module docstring) for
        checked model inputs of B videos."""
        probs, video, start, end = segment_probabilities(
            lambda x, training: self.model({k: x[k] for k in self.input_names},
                                           training=training),
            inputs, self._data, self.segment_classes)
        scores, top = tf.math.top_k(probs, k=self.segment_top_k)
        class_ids = tf.gather(tf.constant(self.segment_classes), top)
        count = tf.shape(inputs[schema.NUM_FRAMES_KEY])[0]
        per_video = tf.math.unsorted_segment_sum(tf.ones_like(video), video, count)
        first = tf.cumsum(per_video, exclusive=True)
        place = tf.stack([video, tf.range(tf.size(video)) - tf.gather(first, video)], axis=1)
        most = tf.reduce_max(tf.concat([per_video, [0]], 0))

        def dense(values, pad, *inner):  # [N, ...] -> [B, S, ...], `pad` past the segments
            shape = tf.concat([[count, most], tf.constant(inner, tf.int32, [len(inner)])], 0)
            return tf.scatter_nd(place, values - pad, shape) + pad

        k = self.segment_top_k
        indexes = dense(class_ids, -1, k)
        names = tf.concat([self.class_names, [""]], 0)
        return {
            "num_segments": per_video,
            "segment_start_times": dense(start, -1),
            "segment_end_times": dense(end, -1),
            "segment_class_indexes": indexes,
            "segment_predictions": dense(scores, 0.0, k),
            "segment_class_names": tf.gather(
                names, tf.where(indexes < 0, tf.shape(self.class_names)[0], indexes)),
        }

    def _serve_segments(self, example_bytes):
        inputs, video_id = self.parse_records(example_bytes)
        result = self.outputs(inputs)
        result.update(self.segment_outputs(inputs))
        result["video_id"] = video_id
        return result

    def _serve_examples(self, example_bytes):
        inputs, video_id = self.parse_records(example_bytes)
        result = self.outputs(inputs)
        result["video_id"] = video_id
        return result

    # --- parsing --------------------------------------------------------------------

    def parse_records(self, example_bytes: tf.Tensor):
        """Parses and checks serialized records [B] (SequenceExamples, or Examples
        for video-level data) with the data's one record parser
        (`videotag.data.parsing.RecordParser`).

        Returns:
            (model inputs by name, video ids string [B]).

        Raises (when run):
            InvalidArgumentError: a record cannot be parsed (named by the parse op:
            "example id: record i"), or is malformed (no id, no frames, a frame of
            the wrong byte length, a mean feature of the wrong size, a title that
            is not one UTF-8 string):
            "bad request: N malformed record(s): record i (id '...'): <problem>",
            the same problem text as the tf.data pipeline's.
        """
        count = tf.shape(example_bytes)[0]
        names = tf.strings.join(["record ", tf.strings.as_string(tf.range(count))])
        parsed = self._parser.parse(example_bytes, names)
        features, errors = parsed.features, parsed.errors
        if not self.frame_level:
            with tf.control_dependencies([_assert_good(errors)]):
                inputs = {name: tf.identity(features[name]) for name, _ in self._features}
            if self.has_title:
                inputs[schema.TITLE_KEY] = features[schema.TITLE_KEY]
            return inputs, features[schema.VIDEO_ID_KEY]
        with tf.control_dependencies([_assert_good(errors)]):
            num_frames = tf.identity(features[schema.NUM_FRAMES_KEY])
        inputs = {schema.NUM_FRAMES_KEY: num_frames}
        steps = tf.reduce_max(tf.concat([num_frames, [0]], 0))
        for name, size in self._features:
            inputs[name] = decode_frames(features[name], steps, size)
        if self.has_title:
            inputs[schema.TITLE_KEY] = features[schema.TITLE_KEY]
        return inputs, features[schema.VIDEO_ID_KEY]


def _assert_good(errors: tf.Tensor):
    """An Assert that fails naming the first bad records (parser messages, "" when
    good) and their problems."""
    described = tf.boolean_mask(errors, tf.not_equal(errors, ""))
    total = tf.size(described)
    message = tf.strings.join([
        "bad request: ", tf.strings.as_string(total), " malformed record(s): ",
        tf.strings.reduce_join(described[:_MAX_REPORTED], separator=" | "),
        tf.where(total > _MAX_REPORTED, " | ...", "")])
    return tf.debugging.Assert(tf.equal(total, 0), [message], summarize=1)
