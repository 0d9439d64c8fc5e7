"""Pipeline configs: a dict, a JSON file, or a YAML file (YAML needs PyYAML, an optional dependency)."""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Dict, Mapping, Union

from ._errors import FlywheelError

ConfigSource = Union[str, "os.PathLike[str]", Mapping[str, Any]]

# Sources the workers read themselves; anything else is a local path.
_REMOTE = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)


def load_pipeline_config(config: ConfigSource) -> Dict[str, Any]:
    """The config as a dict. From a file, a relative local ``data.source`` is made absolute against the file's folder,
    as the CLI does (the server refuses relative paths: its workers cannot know where the file was)."""
    if isinstance(config, Mapping):
        try:  # a deep copy, and an early error for what JSON cannot carry
            copied: Dict[str, Any] = json.loads(json.dumps(dict(config), allow_nan=False))
        except (TypeError, ValueError) as error:
            raise FlywheelError("INVALID_PARAMETER_VALUE", f"the pipeline config cannot be sent as JSON: {error}", field="config") from error
        return copied
    path = Path(os.fspath(config))
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise FlywheelError("INVALID_PARAMETER_VALUE", f"cannot read pipeline config {path}: {error.strerror or error}") from error
    data = _parse(path, text)
    if not isinstance(data, dict):
        raise FlywheelError("INVALID_PARAMETER_VALUE", f"{path}: a pipeline config is a mapping (name, model, data, training, …), not {type(data).__name__}")
    source = data.get("data", {}).get("source") if isinstance(data.get("data"), dict) else None
    if isinstance(source, str) and source and not _REMOTE.match(source) and not os.path.isabs(source):
        data["data"]["source"] = str((path.resolve().parent / source).resolve())
    return data


def _parse(path: Path, text: str) -> Any:
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as error:
            raise FlywheelError("INVALID_PARAMETER_VALUE", f"{path} is not valid JSON: {error}") from error
    try:
        import yaml  # type: ignore[import-untyped]
    except ImportError:
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            raise FlywheelError(
                "INVALID_PARAMETER_VALUE",
                f"{path} is not JSON, and reading YAML needs PyYAML: pip install 'flywheel[yaml]' (or pass the config as a dict)",
            ) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise FlywheelError("INVALID_PARAMETER_VALUE", f"{path} is not valid YAML: {error}") from error
