"""Checking a glob of shards before a long run (`videotag validate-data`).

`validate_data` reads every shard in parallel with the training pipeline's shard
reader (`videotag.data.shards.read_shard`, which reads a corrupt or truncated shard
up to its damage and says where it stopped) and judges every record with the one
record parser (`videotag.data.parsing.RecordParser`), exactly as a run with the same
data config would. A chunk of records is parsed first without the check of value
types, which decodes every frame's `tf.train.Feature` and costs several times the
parse: a record whose key holds values of another type fails the parse op of its
chunk, and only such a chunk is parsed again with the types checked record by
record (`wrong_type`), which describes it as the pipeline's error would. Nothing
stops at a bad record: they are counted by reason, with the first few named (file,
record, id, problem). The good records give the frame-count and labels-per-video
histograms and the label frequencies; the first record gives the layout
(`videotag.data.kinds.record_layout`), compared with the config.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Dict, Iterable, Iterator, List

import numpy as np
import tensorflow as tf

from videotag.data import schema
from videotag.data.kinds import record_layout
from videotag.data.labels import load_label_names
from videotag.data.parsing import ID_KEYS, PARSE_REASONS, RecordParser
from videotag.data.shards import list_files, read_shard
from videotag.progress import Progress

# Records parsed at once (as the training pipeline does).
CHUNK = 64
# Chunks scanned at once at most (one thread each).
_MAX_THREADS = 8
# Frames are counted whole (the run keeps data.max_frames of them).
_ALL_FRAMES = 2**31 - 1


@dataclasses.dataclass
class Validation:
    """What `validate_data` found.

    Attributes:
        pattern: the glob; `files` the shards it matched.
        records: records read; `good` of them without a problem.
        reasons: bad records by reason (a record may have several); `bad` in all.
        examples: the first messages of bad records by reason ("<file>: record <i>
            (id <id>): <problems>").
        corrupt_shards: (shard, records read before the damage) of each corrupt or
            truncated shard; `empty_shards` the shards without any record.
        frames: frames of each good record (frame-level data; all of them, not
            only the data.max_frames a run keeps).
        labels_per_video: label count of each good record.
        class_counts: good records per class; `class_names` from the label file.
        titles, categories: records whose title / category key holds a value.
        layout: the keys of the first record and what they hold
            (`record_layout`), and `notes`: where it differs from the config.
        seconds: the time of the pass; `cpu_seconds` the CPU time of the process
            during it.
        rechecked: chunks parsed again with the value types checked (a record of
            the chunk holds a key of another type than asked).
    """

    pattern: str
    files: List[str]
    config: Dict
    layout: Dict
    notes: List[str]
    records: int = 0
    good: int = 0
    bad: int = 0
    reasons: Dict[str, int] = dataclasses.field(default_factory=dict)
    examples: Dict[str, List[str]] = dataclasses.field(default_factory=dict)
    corrupt_shards: List[tuple] = dataclasses.field(default_factory=list)
    empty_shards: List[str] = dataclasses.field(default_factory=list)
    frames: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros([0], np.int64))
    labels_per_video: np.ndarray = dataclasses.field(
        default_factory=lambda: np.zeros([0], np.int64))
    class_counts: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros([0], np.int64))
    class_names: List[str] = dataclasses.field(default_factory=list)
    titles: int = 0
    categories: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    rechecked: int = 0

    @property
    def ok(self) -> bool:
        """True when every record of every shard is good (and there is one at least)."""
        return self.good > 0 and self.bad == 0 and not self.corrupt_shards

    @property
    def rate(self) -> float:
        """Records read per second."""
        return self.records / self.seconds if self.seconds else 0.0


def discover_layout(files: List[str]) -> Dict:
    """The layout of the first record of the first shard that has one ({} if none)."""
    for path in files:
        if tf.io.gfile.stat(path).length == 0:
            continue
        try:
            for record in tf.data.TFRecordDataset(path).take(1):
                return record_layout(record.numpy())
        except tf.errors.OpError:
            continue
    return {}


def layout_notes(layout: Dict, data) -> List[str]:
    """Where the first record's layout differs from the data config (a run would
    find every such record bad)."""
    if not layout:
        return []
    context, lists = layout["context"], layout["lists"]
    notes = []
    kind = "frame" if lists else "video"
    if kind != data.record_type:
        notes.append(f"the records are {kind}-level, data.record_type is {data.record_type!r}")
    if data.id_key not in context:
        found = [k for k in ID_KEYS if k in context]
        notes.append(f"the records have no id key {data.id_key!r}"
                     + (f" (they have {found[0]!r}: set data.id_key)" if found else ""))
    for name, size in zip(data.feature_names, data.feature_sizes):
        held = lists.get(name) if data.record_type == "frame" else context.get(name)
        if held is None:
            notes.append(f"the records have no feature {name!r} (data.feature_names)")
        elif data.record_type == "frame" and held["kind"] == "bytes" \
                and held["first_bytes"] != size:
            notes.append(f"feature {name} has {held['first_bytes']} bytes per frame, "
                         f"data.feature_sizes says {size}")
        elif data.record_type == "video" and held["values"] != size:
            notes.append(f"feature {name} has {held['values']} values, "
                         f"data.feature_sizes says {size}")
    return notes


def _stat_sizes(files: List[str]) -> List[int]:
    with ThreadPoolExecutor(max_workers=16) as pool:  # stat is a request on object stores
        return list(pool.map(lambda f: tf.io.gfile.stat(f).length, files))


def _scan(parser: RecordParser, data):
    """The function of a chunk of (records, filenames, indexes): what the Python loop
    of `validate_data` adds up (only the bad records' messages leave the graph)."""
    frame_level = data.record_type == "frame"
    presence = [data.title_key, data.category_key]

    def scan(records, filenames, indexes):
        is_record = indexes >= 0  # the end-of-shard markers of read_shard are not
        names = tf.strings.join([filenames, ": record ", tf.strings.as_string(indexes)])
        # the markers' records are "" (parsed as an empty record): not copied again
        parsed = parser.parse(records, names)
        bad = parsed.bad & is_record[:, None]
        any_bad = tf.reduce_any(bad, axis=1)
        good = is_record & ~any_bad
        labels = parsed.features[schema.LABELS_KEY]
        out = {
            "records": tf.reduce_sum(tf.cast(is_record, tf.int64)),
            "bad": tf.boolean_mask(bad, any_bad),
            "errors": tf.boolean_mask(parsed.errors, any_bad),
            "marker_files": tf.boolean_mask(filenames, ~is_record),
            "marker_indexes": tf.boolean_mask(indexes, ~is_record),
            "labels": tf.boolean_mask(tf.cast(tf.reduce_sum(labels, axis=1), tf.int64), good),
            "class_counts": tf.reduce_sum(labels * tf.cast(good, tf.float32)[:, None], axis=0),
        }
        if frame_level:
            out["frames"] = tf.boolean_mask(
                tf.cast(parsed.features[schema.NUM_FRAMES_KEY], tf.int64), good)
        # records whose title / category key holds a value (markers are parsed as "")
        if parsed.context_keys is None:  # one more parse op, of these two keys alone
            spec = {data.title_key: tf.io.RaggedFeature(tf.string, row_splits_dtype=tf.int64),
                    data.category_key: tf.io.RaggedFeature(tf.int64,
                                                           row_splits_dtype=tf.int64)}
            context = (tf.io.parse_sequence_example(records, context_features=spec)[0]
                       if frame_level else tf.io.parse_example(records, spec))
            held = [context[key].row_lengths() > 0 for key in presence]
        else:  # with the types checked, whatever type their values have
            held = [tf.reduce_any(tf.equal(parsed.context_keys, key), axis=1)
                    for key in presence]
        for present, name in zip(held, ("titles", "categories")):
            out[name] = tf.reduce_sum(tf.cast(present, tf.int64))
        return out

    return scan


class _Scanner:
    """Scans chunks (`_scan`): without the check of value types first, and again with
    it only when a record of the chunk holds a key of another type (the parse op then
    fails the chunk; records of the wrong types are rare, the check is costly)."""

    def __init__(self, data):
        spec = (tf.TensorSpec([None], tf.string), tf.TensorSpec([None], tf.string),
                tf.TensorSpec([None], tf.int64))
        # the frames are checked and counted, not returned (nothing here reads them)
        self.fast = tf.function(
            _scan(RecordParser(data, check_types=False, frames="none"), data),
            input_signature=spec).get_concrete_function()
        self.checked = tf.function(
            _scan(RecordParser(data, check_types=True, frames="none"), data),
            input_signature=spec)
        # the first call instantiates the function (most of a second): done here, on
        # no records, before the clock of the pass starts
        self.fast(tf.zeros([0], tf.string), tf.zeros([0], tf.string), tf.zeros([0], tf.int64))

    def __call__(self, chunk) -> Dict[str, np.ndarray]:
        """The scan of a chunk as arrays, and `rechecked`: 1 when the chunk was
        parsed again with the types checked."""
        rechecked = 0
        try:
            out = self.fast(*chunk)
        except tf.errors.InvalidArgumentError:
            # a value of another type ("Data types don't match"), or a record that is
            # not a protocol message: the checked parser names and describes the first
            # (wrong_type) and fails on the second with the parse op's error naming it
            out, rechecked = self.checked(*chunk), 1
        return {"rechecked": rechecked, **{k: v.numpy() for k, v in out.items()}}


def _in_order(pool: ThreadPoolExecutor, function: Callable, items: Iterable,
              ahead: int) -> Iterator:
    """`function(item)` of each item, in order, computed by `pool` up to `ahead` items
    in advance."""
    pending: collections.deque = collections.deque()
    for item in items:
        pending.append(pool.submit(function, item))
        if len(pending) >= ahead:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def validate_data(data, pattern: str, examples: int = 3, progress_seconds: float = 10.0,
                  chunk: int = CHUNK) -> Validation:
    """Reads every record of `pattern` and judges it as a run with `data` would.

    Args:
        data: the data config (`DataConfig`); its num_classes must be resolved.
        pattern: glob (or comma-separated globs) of TFRecord shards.
        examples: messages kept per reason of bad records.
        progress_seconds: seconds between progress lines (0: none).
        chunk: records parsed at once.

    Raises:
        DataError: the pattern matches no file or only empty files; the label file
            does not define data.num_classes classes.
    """
    files = list_files(pattern)
    class_names = load_label_names(data.label_file, data.num_classes)
    layout = discover_layout(files)
    read = dataclasses.replace(data, max_frames=_ALL_FRAMES)
    scanner = _Scanner(read)  # traced and instantiated before the clock starts
    sizes = _stat_sizes(files)
    result = Validation(pattern=pattern, files=files, config=dataclasses.asdict(data),
                        layout=layout, notes=layout_notes(layout, data),
                        class_names=class_names,
                        empty_shards=[f for f, s in zip(files, sizes) if s == 0])
    result.reasons = {r: 0 for r in PARSE_REASONS}
    result.examples = {r: [] for r in PARSE_REASONS}
    file_ds = tf.data.Dataset.from_tensor_slices((files, tf.constant(sizes, tf.int64)))
    ds = file_ds.interleave(lambda f, s: read_shard(f, s, skip_corrupt=True),
                            cycle_length=max(1, min(data.num_parallel_reads, len(files))),
                            num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    # the chunks are scanned by two threads per core (a scan runs in TensorFlow ops,
    # without the GIL; one thread's chunk is scanned while another's output is read
    # back), in order
    ds = ds.batch(chunk).prefetch(2)
    threads = max(2, min(_MAX_THREADS, 2 * (os.cpu_count() or 1)))
    frames, labels = [], []
    class_counts = np.zeros([data.num_classes], np.float64)
    progress = Progress("validated", every=progress_seconds)
    start, cpu = time.perf_counter(), time.process_time()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for out in _in_order(pool, scanner, ds, ahead=threads + 1):
            result.records += int(out["records"])
            result.rechecked += out["rechecked"]
            for flags, message in zip(out["bad"], out["errors"]):
                result.bad += 1
                for reason, flagged in zip(PARSE_REASONS, flags):
                    if flagged:
                        result.reasons[reason] += 1
                        if len(result.examples[reason]) < examples:
                            result.examples[reason].append(message.decode("utf-8", "replace"))
            for name, index in zip(out["marker_files"], out["marker_indexes"]):
                if index < -1:
                    result.corrupt_shards.append((name.decode("utf-8", "replace"), int(-2 - index)))
            labels.append(out["labels"])
            frames.append(out.get("frames", np.zeros([0], np.int64)))
            class_counts += out["class_counts"]
            result.titles += int(out["titles"])
            result.categories += int(out["categories"])
            progress.add(int(out["records"]))
    progress.close()
    result.seconds = time.perf_counter() - start
    result.cpu_seconds = time.process_time() - cpu
    result.good = result.records - result.bad
    result.reasons = {r: n for r, n in result.reasons.items() if n}
    result.examples = {r: m for r, m in result.examples.items() if m}
    result.frames = np.concatenate(frames) if frames else result.frames
    result.labels_per_video = np.concatenate(labels) if labels else result.labels_per_video
    result.class_counts = class_counts.round().astype(np.int64)
    return result
