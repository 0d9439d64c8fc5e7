"""Finding the user's training function: ``package.module:function`` importable from the worker's code roots, or
``relative/script.py:function`` resolved inside one of them (never outside: no absolute paths, no ``..``)."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable, List, Optional, Sequence


class EntrypointError(Exception):
    """The entrypoint is malformed, not found in the code roots, failed to import, or is not callable."""


@dataclass(frozen=True)
class Entrypoint:
    """A parsed entrypoint: ``module`` (dotted) or ``script`` (a relative POSIX path), and the function's attribute
    path."""

    text: str
    function: str
    module: Optional[str] = None
    script: Optional[str] = None


def _roots_text(roots: Sequence[Path]) -> str:
    return ", ".join(str(r) for r in roots) or "(none)"


def parse_entrypoint(text: str) -> Entrypoint:
    """Splits ``target:function``; the target is a script when it ends in ``.py`` or contains a slash, else a module."""
    if not isinstance(text, str) or not text.strip():
        raise EntrypointError("the entrypoint is empty: give 'package.module:function' or 'path/to/script.py:function'")
    target, sep, function = text.strip().rpartition(":")
    if not sep or not target or not function:
        raise EntrypointError(
            f"entrypoint {text!r} names no function: give 'package.module:function' or 'path/to/script.py:function'"
        )
    if not all(part.isidentifier() for part in function.split(".")):
        raise EntrypointError(f"entrypoint {text!r}: {function!r} is not a Python name")
    if target.endswith(".py") or "/" in target or "\\" in target:
        return Entrypoint(text, function, script=_clean_script_path(text, target))
    if not all(part.isidentifier() for part in target.split(".")):
        raise EntrypointError(f"entrypoint {text!r}: {target!r} is neither a module name nor a .py path")
    return Entrypoint(text, function, module=target)


def _clean_script_path(text: str, target: str) -> str:
    posix = target.replace("\\", "/")
    if posix.startswith("/") or os.path.isabs(target) or (len(posix) > 1 and posix[1] == ":"):
        raise EntrypointError(f"entrypoint {text!r}: a script path is relative to a code root, not absolute")
    parts = [p for p in PurePosixPath(posix).parts if p not in ("", ".")]
    if ".." in parts:
        raise EntrypointError(f"entrypoint {text!r}: a script path may not climb out of its code root with '..'")
    if not parts or not parts[-1].endswith(".py"):
        raise EntrypointError(f"entrypoint {text!r}: a script path names a .py file")
    return "/".join(parts)


def resolve_script(entrypoint: Entrypoint, roots: Sequence[Path]) -> Path:
    """The script's file inside the first code root that has it; a symlink that leads out of its root is refused."""
    assert entrypoint.script is not None
    for root in roots:
        base = Path(root).resolve()
        candidate = (base / entrypoint.script).resolve()
        if not candidate.is_file():
            continue
        if base != candidate and base not in candidate.parents:
            raise EntrypointError(
                f"entrypoint {entrypoint.text!r}: {entrypoint.script} leads out of code root {base} (a symlink)"
            )
        return candidate
    raise EntrypointError(
        f"entrypoint {entrypoint.text!r}: no file {entrypoint.script} in the worker's code roots ({_roots_text(roots)})"
    )


def load_entrypoint(text: str, roots: Sequence[Path]) -> Callable[..., object]:
    """Imports the entrypoint's module or script (the code roots first on ``sys.path``) and returns the function."""
    entrypoint = parse_entrypoint(text)
    root_paths: List[str] = [str(Path(r).resolve()) for r in roots]
    for path in reversed(root_paths):
        if path not in sys.path:
            sys.path.insert(0, path)
    if entrypoint.script is not None:
        file = resolve_script(entrypoint, roots)
        if str(file.parent) not in sys.path:
            sys.path.insert(0, str(file.parent))
        name = "flywheel_entrypoint_" + "".join(c if c.isalnum() else "_" for c in entrypoint.script[:-3])
        spec = importlib.util.spec_from_file_location(name, file)
        if spec is None or spec.loader is None:
            raise EntrypointError(f"entrypoint {text!r}: {file} cannot be loaded as a Python module")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as error:
            raise EntrypointError(
                f"entrypoint {text!r}: importing {file} failed: {type(error).__name__}: {error}"
            ) from error
        where = str(file)
    else:
        assert entrypoint.module is not None
        try:
            module = importlib.import_module(entrypoint.module)
        except ModuleNotFoundError as error:
            missing = error.name or ""
            if entrypoint.module == missing or entrypoint.module.startswith(missing + "."):
                raise EntrypointError(
                    f"entrypoint {text!r}: no module {entrypoint.module} in the worker's code roots "
                    f"({_roots_text(roots)})"
                ) from error
            raise EntrypointError(f"entrypoint {text!r}: importing {entrypoint.module} failed: {error}") from error
        except Exception as error:
            raise EntrypointError(
                f"entrypoint {text!r}: importing {entrypoint.module} failed: {type(error).__name__}: {error}"
            ) from error
        where = entrypoint.module
    target: object = module
    for attribute in entrypoint.function.split("."):
        if not hasattr(target, attribute):
            raise EntrypointError(
                f"entrypoint {text!r}: {where} has no {entrypoint.function} (code roots: {_roots_text(roots)})"
            )
        target = getattr(target, attribute)
    if not callable(target):
        raise EntrypointError(
            f"entrypoint {text!r}: {entrypoint.function} in {where} is a {type(target).__name__}, not a function"
        )
    return target  # type: ignore[return-value]
