"""Reading the book's YAML files (claims.yml, profiles.yml) against their schemas."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import yaml

#: PyYAML's safe loader, in C (libyaml) where it is built: the same documents, several times faster.
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_yaml(path: Path, schema: dict[str, Any], error: type[Exception], kind: str) -> Any:
    """Load ``path`` and check it against a JSON schema.

    Raises ``FileNotFoundError`` when the file is missing and ``error`` naming
    the file and the offending field when the contents do not fit the schema.
    """
    if not path.is_file():
        raise FileNotFoundError(f"{kind} file {path} does not exist")
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=SAFE_LOADER)
    except yaml.YAMLError as problem:
        raise error(f"{path}: not valid YAML: {problem}") from None
    problems = sorted(jsonschema.Draft7Validator(schema).iter_errors(data), key=str)
    if problems:
        where = "/".join(str(p) for p in problems[0].absolute_path) or "(top level)"
        raise error(f"{path}: at {where}: {problems[0].message}")
    return data
