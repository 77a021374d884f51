"""The rig's pydantic bases: every model that crosses a boundary refuses an unknown field (a typo
like `lt_pcts` would otherwise be dropped and the message still answered "applied").

- Record: a mutable record (state that a workflow updates in place, messages built field by field);
- Frozen: a value, immutable and hashable;
- Finite: a value whose numbers come from outside (rules files, `set_rules`, broker figures, the
  firm's messages): Infinity and NaN are refused where a number belongs ("Infinity" as a hard cap
  would pass every `gt=0`). Models that hold a figure the rig computes stay Frozen: an unmeasurable
  loss reads as infinite (domain/pnl.py `PnlSummary.daily_loss_pct`).

Subclasses add to the config (pydantic merges it), e.g. `populate_by_name`.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Frozen(Record):
    model_config = ConfigDict(frozen=True)


class Finite(Frozen):
    model_config = ConfigDict(allow_inf_nan=False)
