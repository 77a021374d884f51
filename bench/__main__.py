"""`make bench`: every benchmark, each printed beside its baseline from the same run."""

import asyncio

from bench import core, day, orders

core.run()
print()
asyncio.run(orders.run())
print()
asyncio.run(day.run())
