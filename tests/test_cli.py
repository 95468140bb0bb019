"""The `videotag` command's dispatcher: the commands and their one-line summaries,
each command's own flags, tools/*.py as entry points of the same commands, errors."""

import ast
import re

import pytest

from tests.helpers import REPO, finish_processes, start_process
from videotag.cli.main import main

COMMANDS = ["train", "eval", "export", "predict", "timeline", "extract", "embed", "similar",
            "build-index", "make-demo-videos", "make-text-preset", "validate-data",
            "batch-extract", "batch-predict", "batch-embed"]
# the flags of tools/train.py and tools/predict.py before the command moved into videotag,
# and those added since (segments)
TRAIN_FLAGS = {"model_name", "config", "model_dir", "train_data_pattern", "eval_data_pattern",
               "epochs", "batch_size", "distribution", "logical_cpus", "override", "segments"}
PREDICT_FLAGS = {"on_bad_record", "model_dir", "saved_model", "input_data_pattern", "videos",
                 "extraction_config", "features_dir", "output_file", "format", "top_k",
                 "threshold", "batch_size", "progress_seconds", "segments", "timeline_file",
                 "top_n", "segment_label_file"}


def _first_docstring_line(path):
    return ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))).splitlines()[0]


def test_help_lists_every_command_with_the_first_line_of_its_docstring(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["videotag", "--help"])
    assert stop.value.code == 0
    rows = [line.split(None, 1) for line in capsys.readouterr().out.splitlines()
            if line.startswith("  ")]
    assert [name for name, _ in rows] == COMMANDS
    for name, text in rows:
        module = REPO / "videotag" / "cli" / f"{name.replace('-', '_')}.py"
        assert text == _first_docstring_line(module), name


def test_every_tool_script_runs_one_command_and_says_what_it_does():
    commands = {}
    for script in sorted((REPO / "tools").glob("*.py")):
        text = script.read_text(encoding="utf-8")
        (command,) = re.findall(r'run_command\("([\w-]+)"\)', text)
        commands[script.name] = command
        module = REPO / "videotag" / "cli" / f"{command.replace('-', '_')}.py"
        assert _first_docstring_line(script) == _first_docstring_line(module)
    assert sorted(commands.values()) == sorted(COMMANDS)
    assert commands["train.py"] == "train"
    assert commands["extract_features.py"] == "extract"


def test_a_missing_or_unknown_command_is_an_error(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["videotag", "trian", "--model_name=NEXTVLAD"])
    assert stop.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("error: unknown command 'trian'; the commands: train, eval,")
    with pytest.raises(SystemExit) as stop:
        main(["videotag"])
    assert stop.value.code == 1
    assert "error: give a command: train, eval," in capsys.readouterr().err


def _flag_names(help_text, module):
    section = help_text.split(f"\n{module}:\n")[1].split("\n\n")[0]
    return set(re.findall(r"^  --(?:\[no\])?(\w+):", section, re.MULTILINE))


def test_a_command_lists_its_own_flags_and_runs_like_its_tool_script():
    procs = [start_process(["-m", "videotag", "train", "--help"]),
             start_process(["tools/train.py", "--help"]),
             start_process(["-m", "videotag", "predict", "--help"]),
             start_process(["-m", "videotag", "train", "--model_name=NOPE"])]
    (code, train_help, _), (tool_code, tool_help, _), (predict_code, predict_help, _), \
        (bad_code, _, bad_err) = finish_processes(procs)
    assert code == tool_code == predict_code == 0
    assert train_help == tool_help
    assert train_help.startswith("Train a registered model")
    assert _flag_names(train_help, "videotag.cli.train") == TRAIN_FLAGS
    assert _flag_names(predict_help, "videotag.cli.predict") == PREDICT_FLAGS
    assert bad_code == 1 and "unknown model 'NOPE'" in bad_err and "error: " in bad_err
    assert "Traceback" not in bad_err
