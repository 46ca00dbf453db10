"""Profiles and parameter validation."""

from __future__ import annotations

import pytest

from conftest import CHAPTERS, NOTEBOOKS, notebook_id
from reprobook.book.notebooks import default_parameters
from reprobook.book.profiles import ParameterError, load_profiles

PROFILES = """\
chapter: demo
notebooks:
  01_demo:
    parameters:
      iterations: {type: int, min: 10, max: 1000, help: number of iterations}
      rate: {type: float, min: 0.0, help: a learning rate}
      method: {type: str, choices: [adam, sgd], help: the optimizer}
      sizes: {type: "list[int]", min: 1, help: the model sizes}
      verbose: {type: bool, help: print more}
      model: {type: model, help: the model}
      texts: {type: "list[text]", help: the texts}
      folder: {type: path, help: a folder}
    profiles:
      smoke: {iterations: 10}
      book: {}
      paper: {iterations: 1000, sizes: [64, 128], model: ~/models/big, texts: [/data/c4.txt], folder: ./out}
"""


@pytest.fixture
def spec(tmp_path):
    path = tmp_path / "profiles.yml"
    path.write_text(PROFILES)
    return load_profiles(path)["01_demo"]


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda c: c.slug)
def test_every_chapter_profiles_file_is_valid(chapter):
    profiles = load_profiles(chapter.profiles_file)
    assert sorted(profiles) == chapter.notebooks()


@pytest.mark.parametrize("item", NOTEBOOKS, ids=notebook_id)
def test_parameters_cell_matches_the_declared_parameters(item):
    chapter, name = item
    spec = load_profiles(chapter.profiles_file)[name]
    defaults = default_parameters(chapter.source(name))
    assert sorted(defaults) == sorted(spec.parameters), "parameters cell and profiles.yml disagree"
    assert defaults["profile"] == "book", "the parameters cell holds the book profile"
    assert spec.validate(defaults) == defaults
    assert spec.profiles["book"] == {}, "the book profile is the parameters cell itself"


def test_valid_values_pass(spec):
    values = {"iterations": 10, "rate": 1, "method": "sgd", "sizes": [1, 2], "verbose": False, "seed": 0}
    assert spec.validate(values) == values


@pytest.mark.parametrize(
    "name, value, expected",
    [
        ("iterations", 5, "'iterations' of demo/01_demo must be an integer >= 10 and <= 1000, got 5"),
        ("iterations", 10.0, "must be an integer"),
        ("iterations", True, "must be an integer"),
        ("rate", -0.1, "'rate' .* >= 0.0"),
        ("rate", float("nan"), "'rate'"),
        ("method", "lbfgs", r"one of \['adam', 'sgd'\]"),
        ("sizes", [], "non-empty list"),
        ("sizes", [4, 0], "'sizes'"),
        ("sizes", 4, "'sizes'"),
        ("verbose", "yes", "true or false"),
        ("profile", "weekly", "'profile'"),
        ("seed", -1, "'seed'"),
    ],
)
def test_bad_values_name_the_parameter(spec, name, value, expected):
    with pytest.raises(ParameterError, match=expected):
        spec.validate({name: value})


def test_parameters_that_name_things(spec, tmp_path):
    text = tmp_path / "text.txt"
    text.write_text("some text")
    values = {"model": "lab-tiny", "texts": ["validation", str(text)], "folder": str(tmp_path)}
    assert spec.validate(values) == values
    assert spec.validate({"model": str(tmp_path)}) == {"model": str(tmp_path)}
    with pytest.raises(
        ParameterError, match=r"'model' .* laboratory model name \['lab-comedy', 'lab-micro', 'lab-small', 'lab-tiny'\]"
    ):
        spec.validate({"model": "lab-huge"})
    with pytest.raises(ParameterError, match="existing local checkpoint folder"):
        spec.validate({"model": str(text)})  # a file is not a checkpoint folder
    with pytest.raises(ParameterError, match="'texts'.*each a split of the book's corpus"):
        spec.validate({"texts": ["validation", str(tmp_path / "missing.txt")]})
    with pytest.raises(ParameterError, match="'folder'.*an existing local file or folder"):
        spec.validate({"folder": str(tmp_path / "missing")})
    # a profile's paths need not exist when profiles.yml is read, only when a run starts
    assert spec.profile_values("paper", local_files=False)["model"] == "~/models/big"
    with pytest.raises(ParameterError, match="got '~/models/big'"):
        spec.profile_values("paper")
    with pytest.raises(ParameterError, match="'model'"):
        spec.validate({"model": "lab-hug"}, local_files=False)  # a typo is no path either


def test_unknown_parameter_is_rejected(spec):
    with pytest.raises(ParameterError, match="unknown parameter 'iteratons'.*expected one of"):
        spec.validate({"iteratons": 10})


def test_profiles_apply_and_are_checked(spec, tmp_path):
    assert spec.profile_values("smoke") == {"iterations": 10, "profile": "smoke"}
    assert spec.profile_values("paper", local_files=False) == {
        "iterations": 1000,
        "sizes": [64, 128],
        "model": "~/models/big",
        "texts": ["/data/c4.txt"],
        "folder": "./out",
        "profile": "paper",
    }
    with pytest.raises(ParameterError, match="has no profile 'nightly'; its profiles: \\['smoke', 'book', 'paper'\\]"):
        spec.profile_values("nightly")
    with pytest.raises(ParameterError, match="has no profile 'long'"):  # optional: only where a claim needs it
        spec.profile_values("long")
    longer = tmp_path / "long.yml"
    longer.write_text(
        PROFILES.replace("smoke: {iterations: 10}", "smoke: {iterations: 10}\n      long: {iterations: 500}")
    )
    assert load_profiles(longer)["01_demo"].profile_values("long") == {"iterations": 500, "profile": "long"}
    broken = tmp_path / "broken.yml"
    broken.write_text(PROFILES.replace("smoke: {iterations: 10}", "smoke: {iterations: 1}"))
    with pytest.raises(ParameterError, match="profile 'smoke'.*'iterations'"):
        load_profiles(broken)
    broken.write_text(PROFILES.replace("type: float", "type: double"))
    with pytest.raises(ParameterError, match="rate/type"):
        load_profiles(broken)


@pytest.mark.parametrize(
    "name, text, value",
    [
        ("iterations", "20", 20),
        ("rate", "1", 1.0),
        ("rate", "1e-3", 0.001),
        ("method", "adam", "adam"),
        ("sizes", "[1, 2, 3]", [1, 2, 3]),
        ("verbose", "true", True),
    ],
)
def test_command_line_values_are_parsed(spec, name, text, value):
    assert spec.parse(name, text) == value


def test_command_line_errors(spec):
    with pytest.raises(ParameterError, match="'iterations'.*got 'many'"):
        spec.parse("iterations", "many")
    with pytest.raises(ParameterError, match="unknown parameter 'speed'"):
        spec.parse("speed", "1")


def test_seeding_imports_no_torch_and_seeds_it_once_imported():
    import subprocess
    import sys

    script = """
import sys
from reprobook.book.session import seed_everything
seed_everything(3)
assert "torch" not in sys.modules, "a NumPy notebook does not pay for importing PyTorch"
import torch
torch.set_num_threads(2)
seed_everything(3)
first = torch.rand(3)
torch.manual_seed(3)
assert torch.equal(first, torch.rand(3)) and torch.get_num_threads() == 1
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
