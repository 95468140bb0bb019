"""Write a small BERT preset with random weights, to try the transformer title encoder.

    videotag make-text-preset --output_dir=runs/tiny_bert
    videotag train --model_name=MULTIMODAL --config=multimodal_transformer_demo \
        --override model.text.encoder.preset=runs/tiny_bert --model_dir=runs/mm_bert

The preset is a keras-hub preset folder (the layout of a converted Chinese BERT or
ERNIE): a WordPiece vocabulary learned from the titles of the records (the demo
training data unless --data_pattern is given) and a BertBackbone with random
weights. It checks the mechanics of the title path; it is no pretrained encoder.
`python tools/make_text_preset.py` takes the same flags.
"""

import sys

from absl import flags

FLAGS = flags.FLAGS


def define_flags() -> None:
    """Defines the flags of this command in absl's global FLAGS."""
    flags.DEFINE_string("output_dir", None, "The preset folder to write (must not exist).")
    flags.DEFINE_string("data_pattern", "", "Records whose titles the vocabulary is learned "
                        "from (default: the demo training data).")
    flags.DEFINE_string("title_key", "title", "Context key of the records' titles.")
    flags.DEFINE_integer("vocabulary_size", 1000, "Upper bound of the vocabulary size.")
    flags.DEFINE_integer("num_layers", 2, "Transformer layers.")
    flags.DEFINE_integer("num_heads", 2, "Attention heads.")
    flags.DEFINE_integer("hidden_dim", 64, "Hidden size.")
    flags.DEFINE_integer("intermediate_dim", 128, "Feed-forward size.")
    flags.DEFINE_integer("max_sequence_length", 64, "Positions (model.text.max_length at most).")
    flags.DEFINE_float("dropout", 0.1, "Dropout of the backbone.")
    flags.DEFINE_integer("seed", 0, "Seed of the random weights.")
    flags.mark_flag_as_required("output_dir")


def main(argv):
    """Learns the vocabulary from the titles and writes the preset."""
    del argv
    from videotag.config import DataConfig
    from videotag.data.vocab import title_dataset
    from videotag.models.text_preset import TinyBertSizes, make_random_bert_preset

    pattern = FLAGS.data_pattern
    if not pattern:
        from videotag.data.demo import ensure_demo_data

        pattern = ensure_demo_data().train_pattern
    data = DataConfig(use_title=True, title_key=FLAGS.title_key)
    sizes = TinyBertSizes(FLAGS.vocabulary_size, FLAGS.num_layers, FLAGS.num_heads,
                          FLAGS.hidden_dim, FLAGS.intermediate_dim, FLAGS.max_sequence_length,
                          FLAGS.dropout)
    vocabulary = make_random_bert_preset(FLAGS.output_dir, title_dataset(data, pattern), sizes,
                                         FLAGS.seed)
    print(f"wrote a BERT preset with random weights ({len(vocabulary)} WordPiece tokens learned "
          f"from the titles of {pattern}) to {FLAGS.output_dir}: a mechanics check, not a "
          "pretrained encoder", file=sys.stderr)
    return 0
