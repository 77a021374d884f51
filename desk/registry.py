"""The desk registry (config/desks.yaml): which desks exist and which accounts each may trade.

A desk is known by its namespace; its endpoint is derived from it (desk.contract.endpoint_for),
so the one file says both who may call and what they may touch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from pydantic import Field, StringConstraints, model_validator

from config.load import CONFIG_DIR, read_yaml, validate
from desk.contract import ACCOUNT_PATTERN, NAMESPACE_PATTERN, endpoint_for
from domain.base import Record
from domain.rules import RuleError

DEFAULT_DESKS = CONFIG_DIR / "desks.yaml"
MAX_DESKS = 100
MAX_ACCOUNTS_PER_DESK = 1_000

Namespace = Annotated[str, StringConstraints(pattern=NAMESPACE_PATTERN)]
AccountName = Annotated[str, StringConstraints(pattern=ACCOUNT_PATTERN)]


@dataclass(frozen=True)
class Desk:
    namespace: str
    endpoint: str
    accounts: frozenset[str]

    def may_trade(self, account: str | None) -> bool:
        return account is not None and account in self.accounts


class DeskEntry(Record):
    accounts: list[AccountName] = Field(min_length=1, max_length=MAX_ACCOUNTS_PER_DESK)

    @model_validator(mode="after")
    def _distinct(self) -> DeskEntry:
        if len(set(self.accounts)) != len(self.accounts):
            twice = next(a for a in self.accounts if self.accounts.count(a) > 1)
            raise RuleError("accounts", f"{twice} is listed twice")
        return self


class DeskRegistry(Record):
    desks: dict[Namespace, DeskEntry] = Field(max_length=MAX_DESKS)

    @model_validator(mode="after")
    def _endpoints(self) -> DeskRegistry:
        seen: dict[str, str] = {}
        for namespace in self.desks:
            endpoint = endpoint_for(namespace)
            if endpoint in seen:
                raise RuleError(f"desks.{namespace}", f"shares the endpoint {endpoint!r} with desk {seen[endpoint]!r}")
            seen[endpoint] = namespace
        return self

    def all(self) -> list[Desk]:
        return [Desk(namespace, endpoint_for(namespace), frozenset(entry.accounts)) for namespace, entry in self.desks.items()]

    def by_endpoint(self, endpoint: str) -> Desk | None:
        return next((desk for desk in self.all() if desk.endpoint == endpoint), None)


def desks_file() -> Path:
    return Path(os.environ.get("RIG_DESKS_FILE") or DEFAULT_DESKS)


def load_desks(path: Path | None = None) -> DeskRegistry:
    """The registry, validated; a broken file is a ConfigError naming file, key and problem."""
    path = path or desks_file()
    registry: DeskRegistry = validate(DeskRegistry, read_yaml(path), path)
    return registry
