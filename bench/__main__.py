"""`make bench`: every benchmark, each figure printed beside its baseline from the same run, the
figure measured before the issue-13 rewrite, and its aim ("OK" / "BELOW AIM").

The cost curve (days of 50–1,000 positions, bursts of 100–2,000 orders) is `make bench-scale`.
"""

import asyncio

from bench import core, day, market, orders, pretrade
from worker.connection import exit_now

core.run()
print()
pretrade.run()
print()
asyncio.run(orders.run())
print()
asyncio.run(day.run())
print()
market.run()
print()
asyncio.run(day.run_market_days())
exit_now(0)
