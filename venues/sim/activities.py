"""The simulated venue as local activities of the order workflow (quick, deterministic, no I/O).

They are pure functions of their input (domain/venue.py), so a retried call returns the same
events and the order applies each execution id once: retries cannot double-fill. The risk
cycle's matching step is the same model, computed by the account and delivered to the orders.
"""

from __future__ import annotations

from temporalio import activity

from domain.execution import ExecutionEvent
from venues.sim import model as venue
from venues.sim.model import SimOrder


@activity.defn
async def sim_submit(order: SimOrder) -> list[ExecutionEvent]:
    return venue.submit(order)


@activity.defn
async def sim_cancel(order: SimOrder) -> list[ExecutionEvent]:
    return venue.cancel(order)


@activity.defn
async def sim_precheck(order: SimOrder) -> str | None:
    """What the venue would refuse about this order (its price collar), before anything changes."""
    return venue.venue_collar(order)


SIM_VENUE_ACTIVITIES = [sim_submit, sim_cancel, sim_precheck]
