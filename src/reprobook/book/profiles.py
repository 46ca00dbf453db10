"""Named parameter sets (``smoke``, ``book``, ``paper``, ``long``) and parameter validation.

``chapters/<slug>/profiles.yml`` declares, for each notebook, the parameters of
its ``parameters`` cell (type, allowed range or choices, a help line) and the
profiles that override them. The ``book`` profile is the notebook's own
defaults. ``long`` is optional: a scale between ``book`` and ``paper`` for a claim
the ``book`` scale cannot decide, run as a sweep on a local cluster (about an hour of
two cores per chapter) and committed, never in the test suite. Every run validates its
parameters before any work starts, so a typo or an out-of-range value stops it with a
message naming the parameter.

Parameters that name things are checked the same way: a ``model`` is a laboratory
model's name or an existing checkpoint folder, a ``text`` a split of the book's
corpus or an existing text file, a ``path`` an existing file or folder. When
``profiles.yml`` is read, a profile's local paths (the ``paper`` profile's
checkpoint, say) need not exist on this machine; when a run starts, they must.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from reprobook.book.yaml_files import read_yaml

PROFILE_NAMES = ("smoke", "book", "paper", "long")
#: The profiles every notebook declares; ``long`` only where a claim needs it.
REQUIRED_PROFILES = ("smoke", "book", "paper")
CUSTOM_PROFILE = "custom"
#: Types of things a parameter names: a name the book knows, or a local file or folder.
NAMED_TYPES = ("model", "text", "path")
TYPES = ("int", "float", "str", "bool", "list[int]", "list[float]", "list[str]", *NAMED_TYPES, "list[text]")

#: Parameters every notebook has; a chapter's profiles.yml does not repeat them.
STANDARD_PARAMETERS = {
    "profile": {
        "type": "str",
        "choices": [*PROFILE_NAMES, CUSTOM_PROFILE],
        "help": "the named profile this run uses; claims are judged only at their own profile",
    },
    "seed": {"type": "int", "min": 0, "help": "seed of every random number generator"},
}

_PARAMETER_SCHEMA = {
    "type": "object",
    "required": ["type", "help"],
    "additionalProperties": False,
    "properties": {
        "type": {"enum": list(TYPES)},
        "min": {"type": "number"},
        "max": {"type": "number"},
        "choices": {"type": "array", "minItems": 1},
        "help": {"type": "string", "minLength": 5},
    },
}

PROFILES_SCHEMA = {
    "type": "object",
    "required": ["chapter", "notebooks"],
    "additionalProperties": False,
    "properties": {
        "chapter": {"type": "string"},
        "notebooks": {
            "type": "object",
            "minProperties": 1,
            "patternProperties": {
                r"^\d\d_[a-z0-9_]+$": {
                    "type": "object",
                    "required": ["parameters", "profiles"],
                    "additionalProperties": False,
                    "properties": {
                        "parameters": {"type": "object", "additionalProperties": _PARAMETER_SCHEMA},
                        "profiles": {
                            "type": "object",
                            "required": list(REQUIRED_PROFILES),
                            "additionalProperties": False,
                            "properties": {name: {"type": "object"} for name in PROFILE_NAMES},
                        },
                    },
                }
            },
            "additionalProperties": False,
        },
    },
}


class ParameterError(ValueError):
    """A run parameter that is unknown, of the wrong type or out of range."""


@dataclass(frozen=True)
class ParameterSpec:
    """What one parameter accepts."""

    name: str
    type: str
    help: str
    min: float | None = None
    max: float | None = None
    choices: tuple | None = None

    def allowed(self) -> str:
        """A short description of the allowed values."""
        if self.element_type in NAMED_TYPES:
            kind = _describe_named(self.element_type)
            return f"a non-empty list, each {kind}" if self.type.startswith("list[") else kind
        kind = {"int": "an integer", "float": "a number", "str": "a string", "bool": "true or false"}.get(
            self.type, f"a non-empty list ({self.type})"
        )
        limits = []
        if self.choices is not None:
            limits.append(f"one of {list(self.choices)}")
        if self.min is not None:
            limits.append(f">= {self.min}")
        if self.max is not None:
            limits.append(f"<= {self.max}")
        return kind + (" " + " and ".join(limits) if limits else "")

    @property
    def element_type(self) -> str:
        """The type of the value, or of each item of a list."""
        return self.type.removeprefix("list[").removesuffix("]")

    def check(self, value: Any, where: str, local_files: bool = True) -> Any:
        """Return ``value`` if it is allowed, else raise :class:`ParameterError`.

        With ``local_files=False`` a parameter that names a local file or folder only has
        to look like a path (see the module's docstring).
        """
        problem = f"parameter {self.name!r} of {where} must be {self.allowed()}, got {value!r}"
        items = value if self.type.startswith("list[") else [value]
        if self.type.startswith("list[") and (not isinstance(value, (list, tuple)) or not value):
            raise ParameterError(problem)
        element_type = self.element_type
        for item in items:
            if not _has_type(item, element_type):
                raise ParameterError(problem)
            if element_type in NAMED_TYPES and not _names_something(element_type, item, local_files):
                raise ParameterError(problem)
            if self.choices is not None and item not in self.choices:
                raise ParameterError(problem)
            if self.min is not None and item < self.min or self.max is not None and item > self.max:
                raise ParameterError(problem)
        return list(value) if self.type.startswith("list[") else value


def _has_type(value: Any, name: str) -> bool:
    if name == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if name == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if name in ("str", *NAMED_TYPES):
        return isinstance(value, str)
    return isinstance(value, bool)


def _known_names(kind: str) -> list[str]:
    """The names a parameter of a named type accepts besides local paths."""
    if kind == "model":
        from reprobook.lm.models import MODEL_SPECS

        return sorted(MODEL_SPECS)
    if kind == "text":
        from reprobook.lm.corpus import SPLITS

        return list(SPLITS)
    return []


def _describe_named(kind: str) -> str:
    names = _known_names(kind)
    return {
        "model": f"a laboratory model name {names} or an existing local checkpoint folder",
        "text": f"a split of the book's corpus {names} or an existing local text file",
        "path": "an existing local file or folder",
    }[kind]


def _names_something(kind: str, value: str, local_files: bool) -> bool:
    """Whether ``value`` is a known name of ``kind`` or, for a local path, exists (or looks like one)."""
    if value in _known_names(kind):
        return True
    path = Path(value).expanduser()
    if not local_files:
        return value.startswith(("~", ".", "/")) or "/" in value
    return {"model": path.is_dir(), "text": path.is_file(), "path": path.exists()}[kind]


@dataclass(frozen=True)
class NotebookProfiles:
    """The parameters and profiles of one notebook."""

    chapter: str
    notebook: str
    parameters: dict[str, ParameterSpec]
    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def where(self) -> str:
        return f"{self.chapter}/{self.notebook}"

    def validate(self, values: dict[str, Any], local_files: bool = True) -> dict[str, Any]:
        """Check every value; unknown names are errors too."""
        unknown = sorted(set(values) - set(self.parameters))
        if unknown:
            raise ParameterError(
                f"unknown parameter {unknown[0]!r} for {self.where}; expected one of {sorted(self.parameters)}"
            )
        return {name: self.parameters[name].check(value, self.where, local_files) for name, value in values.items()}

    def profile_values(self, profile: str, local_files: bool = True) -> dict[str, Any]:
        """The overrides a named profile applies to the notebook's defaults."""
        if profile not in self.profiles:
            raise ParameterError(f"{self.where} has no profile {profile!r}; its profiles: {list(self.profiles)}")
        return self.validate({**self.profiles[profile], "profile": profile}, local_files)

    def value_in(self, profile: str, name: str, defaults: dict[str, Any]) -> Any:
        """The value of ``name`` under ``profile``: its override, else the notebook's default."""
        return self.profiles[profile].get(name, defaults.get(name))

    def parse(self, name: str, text: str) -> Any:
        """Turn a command-line string into a validated value of parameter ``name``."""
        if name not in self.parameters:
            raise ParameterError(
                f"unknown parameter {name!r} for {self.where}; expected one of {sorted(self.parameters)}"
            )
        spec = self.parameters[name]
        element_type = spec.element_type
        value = text if spec.type in ("str", *NAMED_TYPES) else yaml.safe_load(text)
        if spec.type.startswith("list[") and isinstance(value, list):
            value = [_as_number(item, element_type) for item in value]
        else:
            value = _as_number(value, element_type)
        return spec.check(value, self.where)


def _as_number(value: Any, type_name: str) -> Any:
    """A float parameter accepts what Python reads as a float ("1e-3", 2); others are left as they are."""
    if type_name != "float" or isinstance(value, bool):
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        return value


def load_profiles(path: str | Path) -> dict[str, NotebookProfiles]:
    """Read and validate a chapter's ``profiles.yml``; one entry per notebook."""
    path = Path(path)
    data = read_yaml(path, PROFILES_SCHEMA, ParameterError, "profiles")
    result = {}
    for notebook, entry in data["notebooks"].items():
        specs = {**STANDARD_PARAMETERS, **entry["parameters"]}
        parameters = {
            name: ParameterSpec(name=name, **{k: tuple(v) if k == "choices" else v for k, v in spec.items()})
            for name, spec in specs.items()
        }
        profiles = NotebookProfiles(data["chapter"], notebook, parameters, entry["profiles"])
        for name in entry["profiles"]:
            try:
                profiles.profile_values(name, local_files=False)
            except ParameterError as error:
                raise ParameterError(f"{path}: profile {name!r}: {error}") from None
        result[notebook] = profiles
    return result
