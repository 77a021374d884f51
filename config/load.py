"""Load and validate the YAML config. Errors name the file, the key path and the problem."""

from __future__ import annotations

import reprlib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails, to_json

from config import yaml_safe
from config.text_file import MIB, InputFileError, read_text
from domain.rules import RigConfig, RiskRules, RuleError, Universe
from protocol.parse import printable

CONFIG_DIR = Path(__file__).resolve().parent
DEFAULT_RULES = CONFIG_DIR / "risk_rules.yaml"
DEFAULT_UNIVERSE = CONFIG_DIR / "universe.yaml"
# The largest rules the models accept are about 0.5 MB as YAML (tests/test_input_bounds.py);
# the cap leaves room for comments and is checked before a byte is parsed.
MAX_CONFIG_FILE_BYTES = 1 * MIB
MAX_CONFIG_JSON_BYTES = 1 * MIB


class ConfigError(Exception):
    """A config file that cannot be used. `str()` is the one line a user sees."""

    def __init__(self, path: Path, key: str, problem: str, line: int | None = None) -> None:
        key, problem = printable(key), printable(problem)  # a key "\n" in the file stays on the line
        super().__init__(f"{path}{'' if line is None else f':{line}'}: {key}: {problem}")
        self.path, self.line = path, line
        self.key = key
        self.problem = problem


def read_yaml(path: Path) -> Any:
    return _read(path)[1]


def _read(path: Path) -> tuple[str, Any]:
    try:
        text = read_text(path, MAX_CONFIG_FILE_BYTES)
        return text, yaml_safe.load(text)
    except InputFileError as err:
        raise ConfigError(path, err.where, err.problem) from None
    except yaml_safe.YamlError as err:
        raise ConfigError(path, err.where, err.problem) from None


def _short_repr() -> reprlib.Repr:
    """A bounded rendering of what a file held (a 20,000-symbol list is not echoed whole)."""
    short = reprlib.Repr()
    short.maxstring = short.maxother = 60
    short.maxlist = short.maxdict = short.maxlevel = 3
    return short


_SHORT = _short_repr()


def _describe(error: ErrorDetails) -> tuple[str, str]:
    loc = [str(part) for part in error["loc"]]
    kind = error["type"]
    if loc and loc[-1] == "[key]":  # a mapping key that is not one of the allowed names
        loc.pop()
        expected = error.get("ctx", {}).get("expected", "")
        return ".".join(loc), f"unknown name {loc[-1]!r}; expected {expected}"
    key = ".".join(loc) or "(top level)"
    if kind == "missing":
        return key, "missing key"
    if kind == "extra_forbidden":
        return key, "unknown key"
    ctx_err = error.get("ctx", {}).get("error")
    if isinstance(ctx_err, RuleError):
        prefix = f"{key}." if key != "(top level)" else ""
        return prefix + ctx_err.key, ctx_err.problem
    shown = _SHORT.repr(error.get("input"))
    return key, f"{error['msg']} (got {shown if len(shown) <= 80 else shown[:77] + '...'})"


def validate(model: type[BaseModel], data: Any, path: Path, text: str | None = None) -> Any:
    """`data` as `model`; a refusal names the key, the problem and, given the file's text, the line."""
    if not isinstance(data, dict):
        raise ConfigError(path, "(top level)", "expected a mapping of keys")
    try:
        return model.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        key, problem = _describe(first)
        raise ConfigError(path, key, problem, yaml_safe.line_of(text, first["loc"]) if text is not None else None) from None


def _load(model: type[BaseModel], path: Path) -> Any:
    text, data = _read(path)
    return validate(model, data, path, text)


def load_rules(path: Path = DEFAULT_RULES) -> RiskRules:
    return _load(RiskRules, path)


def load_universe(path: Path = DEFAULT_UNIVERSE) -> Universe:
    return _load(Universe, path)


def load_config(rules_path: Path = DEFAULT_RULES, universe_path: Path = DEFAULT_UNIVERSE) -> RigConfig:
    """Rules and universe, together at most MAX_CONFIG_JSON_BYTES: an account carries both in its
    input, and its continue-as-new adds the carried state (up to ~0.85 MB) under Temporal's 2 MiB."""
    config = RigConfig(rules=load_rules(rules_path), universe=load_universe(universe_path))
    size = len(to_json(config))
    if size > MAX_CONFIG_JSON_BYTES:
        raise ConfigError(
            universe_path, "(file)", f"with {rules_path.name} it makes {size:,} bytes of JSON, over the limit of {MAX_CONFIG_JSON_BYTES:,}"
        )
    return config
