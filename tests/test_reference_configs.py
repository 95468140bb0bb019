"""Every paper configuration names its reference and states its parameters and
deviations (the claims tests/test_reference_*.py check), and the README's model
table says for every model whether its parameters are the reference's."""

from pathlib import Path

import pytest

import videotag
from videotag.config import CONFIG_DIR

README = Path(__file__).resolve().parent.parent / "README.md"


@pytest.mark.parametrize("name", sorted(set(videotag.list_models()) - {"MULTIMODAL"}))
def test_each_paper_config_names_its_reference(name):
    text = (Path(CONFIG_DIR) / f"{name.lower()}.yaml").read_text()
    for heading in ("# Reference:", "# Published configuration:", "# Parameters:",
                    "# Deviations (reason; the option that restores the reference):"):
        assert heading in text, f"configs/{name.lower()}.yaml lacks '{heading}'"
    reference = text.split("# Reference:")[1].split("# Published configuration:")[0]
    assert "commit" in reference and ".py" in reference  # repository, commit, file


def test_multimodal_says_it_reproduces_no_reference():
    text = (Path(CONFIG_DIR) / "multimodal.yaml").read_text()
    assert "# Reference: none reproduced exactly." in text


def test_the_readme_table_covers_every_model():
    table = README.read_text().split("| reference parameters = ours |")[1].split("\n\n")[0]
    for name in videotag.list_models():
        assert f"| `{name}` |" in table, name


def _model_zoo():
    """benchmarks/model_zoo.py as a module (its table is the README's)."""
    import importlib.util

    path = README.parent / "benchmarks" / "model_zoo.py"
    spec = importlib.util.spec_from_file_location("model_zoo_table", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_table_says_what_each_yaml_says_of_its_parameters():
    """The benchmark's "reference parameters = ours" column (written by hand) agrees
    with each YAML's `# Parameters:` paragraph, and the README's table with both."""
    zoo = _model_zoo()
    table = README.read_text().split("| reference parameters = ours |")[1].split("\n\n")[0]
    rows = {line.split("|")[1].strip(" `"): [c.strip() for c in line.split("|")[1:-1]]
            for line in table.splitlines() if line.startswith("| `")}
    for name in videotag.list_models():
        claim = zoo.REFERENCE_PARAMETERS[name]
        text = (Path(CONFIG_DIR) / f"{name.lower()}.yaml").read_text()
        if name == "MULTIMODAL":
            assert claim == "no reference reproduced" and "# Parameters:" not in text
        else:
            said = " ".join(text.split("# Parameters:")[1].split("# Deviations")[0].split())
            if claim == "yes":
                assert said.startswith("equal to the reference's"), (name, said)
            else:
                difference = claim.split()[0]
                assert difference.startswith("-"), (name, claim)
                assert said.startswith("the reference's minus"), (name, said)
                assert difference[1:] in said, (name, difference, said)
        assert rows[name][3] == claim, (name, rows[name][3], claim)
        assert rows[name][1] == zoo.reference(name), name
