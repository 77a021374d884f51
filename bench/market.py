"""Market data: replay a generated day for the whole universe through the feed — a snapshot of
every symbol at each risk cycle of the session (every 60 s, 09:30–16:30: 421 cycles) — against
a plain pyarrow read of the same files.

The replay starts cold (the feed's cache cleared): it reads, indexes and then answers, as a
worker's first cycle on a day would. Two day sizes: the generator's default scale and 5× it
(real trade counts are ~20× the default). Times are the best of 5 runs. Aim: within 3× of the
plain read.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from datetime import timedelta

import pyarrow.parquet as pq

from config.load import load_config
from domain.marketdata import GeneratedDay, MarketDataRule, Shock
from marketdata.feed import DayFeed, clear_cache, load_index, reference_prices
from marketdata.files import write_day
from marketdata.generator import DEFAULT_DAY, generate_day
from marketdata.schema import PRINTS_FILE, QUOTES_FILE

ROUNDS = 5
SCALES = (GeneratedDay.model_fields["scale"].default, 5 * GeneratedDay.model_fields["scale"].default)


def timed(fn: Callable[[], object], rounds: int = ROUNDS) -> float:
    """Best of `rounds`: on a shared 2-core machine the median measures the neighbours too."""
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return min(samples)


def run() -> dict[str, float]:
    config = load_config()
    rules, universe = config.rules, config.universe
    symbols = [i.symbol for i in universe.instruments]
    refs = reference_prices(universe)
    cycle = rules.risk_cycle.cycle_seconds
    cycles = (rules.session.close_minute - rules.session.open_minute) * 60 // cycle + 1
    results: dict[str, float] = {}
    print(f"market: replay a generated day through the feed ({len(symbols)} symbols × {cycles} cycles of {cycle} s)")
    for scale in SCALES:
        recipe = GeneratedDay(seed=7, date=DEFAULT_DAY, shocks=(Shock(at="14:00", move_pct=-5),), scale=scale)
        day = generate_day(recipe, universe, rules.session)
        with tempfile.TemporaryDirectory() as tmp:
            write_day(day, tmp)
            opening = day.manifest.local(rules.session.open)
            times = [opening + timedelta(seconds=cycle * k) for k in range(cycles)]

            def plain_read() -> None:
                pq.read_table(f"{tmp}/{QUOTES_FILE}")
                pq.read_table(f"{tmp}/{PRINTS_FILE}")

            def replay(times: list = times) -> None:
                clear_cache()
                feed = DayFeed(load_index(tmp), refs, MarketDataRule())  # read, check, index
                for as_of in times:
                    feed.snapshot(symbols, as_of)

            def cold_load() -> None:
                clear_cache()
                load_index(tmp)

            plain = timed(plain_read)
            real = timed(replay)
            load = timed(cold_load)
            warm = DayFeed(load_index(tmp), refs, MarketDataRule())

            def snapshots_only(times: list = times, warm: DayFeed = warm) -> None:
                for as_of in times:
                    warm.snapshot(symbols, as_of)

            snapshots = timed(snapshots_only)
            clear_cache()
        views = cycles * len(symbols)
        ratio = real / plain
        m = day.manifest
        print(f"  day at scale {scale:g}: {m.quotes:,} quotes + {m.prints:,} prints")
        print(f"    plain pyarrow read of the files:          {plain * 1000:8.1f} ms")
        print(f"    feed replay (read + index + {cycles} snapshots): {real * 1000:8.1f} ms"
              f"   (read + index {load * 1000:.1f} ms; snapshots {snapshots * 1000:.1f} ms,"
              f" {snapshots / views * 1e6:.1f} µs per view)")  # fmt: skip
        print(f"    ratio: {ratio:.2f}x (aim ≤ 3x) — {'OK' if ratio <= 3 else 'ABOVE AIM'}")
        results[f"scale_{scale:g}_ratio"] = ratio
        results[f"scale_{scale:g}_plain_ms"] = plain * 1000
        results[f"scale_{scale:g}_replay_ms"] = real * 1000
    return results


if __name__ == "__main__":
    run()
