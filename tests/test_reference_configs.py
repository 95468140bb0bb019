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
