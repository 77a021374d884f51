"""Load and validate the YAML config. Errors name the file, the key path and the problem."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from domain.rules import RigConfig, RiskRules, RuleError, Universe

CONFIG_DIR = Path(__file__).resolve().parent
DEFAULT_RULES = CONFIG_DIR / "risk_rules.yaml"
DEFAULT_UNIVERSE = CONFIG_DIR / "universe.yaml"


class ConfigError(Exception):
    """A config file that cannot be used. `str()` is the one line a user sees."""

    def __init__(self, path: Path, key: str, problem: str) -> None:
        super().__init__(f"{path}: {key}: {problem}")
        self.path = path
        self.key = key
        self.problem = problem


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text()
    except OSError as err:
        raise ConfigError(path, "(file)", f"cannot read: {err.strerror or err}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "(file)"
        raise ConfigError(path, where, f"not valid YAML: {getattr(err, 'problem', err)}") from None


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
    return key, f"{error['msg']} (got {error.get('input')!r})"


def _validate(model: type[BaseModel], data: Any, path: Path) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(path, "(top level)", "expected a mapping of keys")
    try:
        return model.model_validate(data)
    except ValidationError as err:
        key, problem = _describe(err.errors()[0])
        raise ConfigError(path, key, problem) from None


def load_rules(path: Path = DEFAULT_RULES) -> RiskRules:
    return _validate(RiskRules, _read_yaml(path), path)


def load_universe(path: Path = DEFAULT_UNIVERSE) -> Universe:
    return _validate(Universe, _read_yaml(path), path)


def load_config(rules_path: Path = DEFAULT_RULES, universe_path: Path = DEFAULT_UNIVERSE) -> RigConfig:
    return RigConfig(rules=load_rules(rules_path), universe=load_universe(universe_path))
