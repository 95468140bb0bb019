"""Counting the records that `data.on_bad_record=skip` drops, by reason."""

from __future__ import annotations

from typing import Dict

import tensorflow as tf

from videotag.data.parsing import PARSE_REASONS

# The reasons a record is dropped, in the order of the SkipCounter's slots: the
# parser's, then the records lost after the damage in a corrupt or truncated shard.
REASONS = PARSE_REASONS + ("corrupt_shard",)


class SkipCounter:
    """Counts records dropped by `on_bad_record=skip`, per reason (`REASONS`).

    The counts live in a variable, so the tf.data pipeline adds to them as it runs.
    """

    def __init__(self):
        self._counts = tf.Variable(
            tf.zeros([len(REASONS)], tf.int64), trainable=False, name="skipped_records"
        )

    def add(self, bad: tf.Tensor) -> None:
        """Counts records' problems: bool [len(PARSE_REASONS)] for one record or
        [B, len(PARSE_REASONS)] for a batch (`ParsedRecords.bad`)."""
        bad = tf.reshape(tf.cast(bad, tf.int64), [-1, len(PARSE_REASONS)])
        per_reason = tf.reduce_sum(bad, axis=0)
        self._counts.assign_add(tf.pad(per_reason, [[0, len(REASONS) - len(PARSE_REASONS)]]))

    def add_corrupt_shard(self) -> None:
        """Counts one shard read up to its damage."""
        self._counts.assign_add(tf.one_hot(REASONS.index("corrupt_shard"), len(REASONS),
                                           dtype=tf.int64))

    def counts(self) -> Dict[str, int]:
        """Records skipped so far, per reason (only reasons that occurred)."""
        values = self._counts.numpy().tolist()
        return {r: int(v) for r, v in zip(REASONS, values) if v}

    def total(self) -> int:
        return int(self._counts.numpy().sum())

    def summary(self) -> str:
        """One line for the user: how many records were skipped, and why."""
        counts = self.counts()
        if not counts:
            return "no records skipped"
        shards = counts.pop("corrupt_shard", 0)
        parts = [f"{v} {k.replace('_', ' ')}" for k, v in counts.items()]
        text = f"skipped {sum(counts.values())} bad records ({', '.join(parts)})" if parts else ""
        if shards:
            text += ("; " if text else "") + (
                f"{shards} corrupt shard(s) read up to the damage, the rest unreadable"
            )
        return text
