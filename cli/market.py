"""Market-data commands (no Temporal needed): generate a day, show a symbol's view, import DBN.

rig market generate --seed 7 --out days/d7 [--date 2024-06-03] [--shock 14:00:ALL:-5 …] [--scale 0.05]
rig market show AAPL --at 14:05 (--from days/d7 | --seed 7 [--date …] [--shock …])
rig market import-dbn FILE… --out DIR [--date 2024-06-03] [--symbols AAPL,MSFT]
"""

from __future__ import annotations

import argparse
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from pyarrow.lib import ArrowException
from pydantic import ValidationError

from cli.errors import EXIT_BAD_INPUT, UserError, first_line
from cli.tables import table
from config.load import DEFAULT_RULES, DEFAULT_UNIVERSE, load_config
from domain.marketdata import (
    FeedSource,
    GeneratedDay,
    MarketDataRule,
    MarketView,
    Shock,
    hard_derisk_gate,
    print_weight,
    soft_derisk_gate,
)
from domain.rules import RigConfig
from marketdata.feed import (
    DayFeed,
    UnknownSymbol,
    generated_index,
    load_index,
    reference_prices,
)
from marketdata.files import DayFileError, write_day
from marketdata.generator import DEFAULT_DAY, generate_day
from protocol.parse import first_error

RECENT_PRINTS = 10
RECENT_WINDOW = timedelta(minutes=5)


def parse_shock(text: str) -> Shock:
    """`HH:MM[:SS]:ALL|SYM[,SYM…]:PCT`, e.g. `14:00:ALL:-5` or `10:30:AAPL,MSFT:3`."""
    try:
        at, who, pct = text.rsplit(":", 2)
        symbols = "all" if who.upper() == "ALL" else tuple(s.strip().upper() for s in who.split(",") if s.strip())
        return Shock(at=at, symbols=symbols, move_pct=float(pct))
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"{text!r}: expected HH:MM:ALL|SYM[,SYM…]:PCT, e.g. 14:00:ALL:-5 ({err})") from None


def _config(args: argparse.Namespace) -> RigConfig:
    return load_config(Path(getattr(args, "rules", DEFAULT_RULES)), Path(getattr(args, "universe", DEFAULT_UNIVERSE)))


def _recipe(args: argparse.Namespace) -> GeneratedDay:
    return GeneratedDay(seed=args.seed, date=args.date, shocks=tuple(args.shock), scale=args.scale)


async def generate(args: argparse.Namespace) -> int:
    config = _config(args)
    try:
        day = generate_day(_recipe(args), config.universe, config.rules.session, config.rules.market_data.round_lot_tiers)
    except ValueError as err:
        raise UserError(first_line(err), EXIT_BAD_INPUT) from None
    try:
        out = write_day(day, args.out)
    except OSError as err:
        raise UserError(f"cannot write {args.out}: {err.strerror or type(err).__name__}", EXIT_BAD_INPUT) from None
    m = day.manifest
    print(f"wrote {out}: {m.date} {m.time_zone} {m.open}–{m.close}, {len(m.symbols)} symbols, "
          f"{m.quotes:,} quotes, {m.prints:,} prints (seed {m.seed}, scale {m.scale:g}"
          f"{', shocks ' + ', '.join(_shock_text(s) for s in m.shocks) if m.shocks else ''})")  # fmt: skip
    return 0


def _shock_text(s: Shock) -> str:
    who = "all" if s.symbols == "all" else ",".join(s.symbols)
    return f"{s.at} {who} {s.move_pct:+g}%"


async def show(args: argparse.Namespace) -> int:
    config = _config(args)
    rule = config.rules.market_data
    refs = reference_prices(config.universe)
    try:
        if args.source_dir:
            index = load_index(args.source_dir, rule)
            source = FeedSource.RECORDED
        else:
            index = generated_index(_recipe(args), config.universe, config.rules.session, rule)
            source = FeedSource.GENERATED
    except ValidationError as err:
        raise UserError(first_error(err), EXIT_BAD_INPUT) from None
    except OSError as err:
        raise UserError(f"{args.source_dir}: {err.strerror or first_line(err)}", EXIT_BAD_INPUT) from None
    except (DayFileError, ValueError, ArrowException) as err:  # one line: a file's problem, never a dump of it
        raise UserError(first_line(err), EXIT_BAD_INPUT) from None
    feed = DayFeed(index, refs, rule, source)
    m = feed.manifest
    symbol = args.symbol.upper()
    try:
        as_of = m.local(args.at)
    except ValueError:
        raise UserError(f"--at {args.at[:40]!r}: expected HH:MM or HH:MM:SS", EXIT_BAD_INPUT) from None
    try:
        view = feed.snapshot([symbol], as_of)[symbol]
    except UnknownSymbol:
        shown = f"{', '.join(m.symbols[:8])}{'…' if len(m.symbols) > 8 else ''}"
        raise UserError(f"{symbol[:40]}: not in the day ({shown}) nor the universe", EXIT_BAD_INPUT) from None
    if args.json:
        print(view.model_dump_json(indent=2))
        return 0
    origin = f"seed {m.seed}, scale {m.scale:g}" if m.seed is not None else m.origin.value.lower()
    shocks = f", shocks {', '.join(_shock_text(s) for s in m.shocks)}" if m.shocks else ""
    print(f"{symbol}  {m.date} {args.at} {m.time_zone}  ({origin}{shocks})")
    if index.crossed:
        print(f"  flag        {index.crossed:,} crossed quote(s) (bid above ask) in the day")
    print(_describe(view, rule, ZoneInfo(m.time_zone)))
    recent = feed.prints_between(symbol, as_of - RECENT_WINDOW, as_of)[-RECENT_PRINTS:]
    lot = feed.lot_of(symbol)
    if recent:
        rows = [
            [p.time.astimezone(ZoneInfo(m.time_zone)).strftime("%H:%M:%S.%f"), f"{p.price:.4f}".rstrip("0").rstrip("."),
             p.size, p.venue, p.conditions or "-", *(["yes", f"{print_weight(p, lot):.1f}"] if real else ["no", "-"])]
            for p, real in zip(recent, feed.real_between(symbol, as_of - RECENT_WINDOW, as_of)[-RECENT_PRINTS:], strict=True)
        ]  # fmt: skip
        print(f"\nlast {len(recent)} prints (5 minutes before):")
        print(table(["time", "price", "size", "venue", "cond", "real", "weight"], rows))
    return 0


def _describe(view: MarketView, rule: MarketDataRule, zone: ZoneInfo) -> str:
    def clock(moment: datetime | None) -> str:
        return moment.astimezone(zone).strftime("%H:%M:%S.%f")[:-3] if moment else "-"

    lines = []
    if view.l1:
        q = view.l1
        lines.append(f"  L1          {q.bid:.2f} × {q.ask:.2f}  ({q.bid_size:,} × {q.ask_size:,})  mid {q.mid:.3f}"
                     f"  at {clock(q.time)}  age {view.l1_age_seconds:.1f} s")  # fmt: skip
    else:
        lines.append("  L1          none yet")
    if view.truth_tick is not None:
        lines.append(f"  truth tick  {view.truth_tick:g}  at {clock(view.truth_tick_time)}  age {view.print_age_seconds:.1f} s")
        lines.append(f"  GRPAN       {view.grpan:g}  concentration {view.concentration:.0%} of {view.grpan_prints} real prints"
                     f" within ±${rule.grpan_band:.2f}")  # fmt: skip
    else:
        lines.append("  truth tick  none (no real print yet)")
    age = f", {view.mark_age_seconds:.0f} s old" if view.mark_age_seconds is not None else ""
    flags = "".join([", STALE" if view.mark_stale else "", ", clamped into the bid/ask" if view.mark_clamped else ""])
    lines.append(f"  mark        {view.mark:g}  ({view.mark_source.value}{age}{flags})")
    reference = view.collar_reference
    lines.append(f"  collar ref  {reference:g}" if reference is not None else "  collar ref  none fresh: a price collar refuses")
    soft, hard = soft_derisk_gate(view, rule), hard_derisk_gate(view, rule)
    for name, gate in (("SOFT", soft), ("HARD", hard)):
        verdict = "may act" if gate.may_act or gate.reason is None else f"{gate.reason.value}: {gate.detail}"
        lines.append(f"  {name} gate   {verdict}")
    return "\n".join(lines)


async def import_dbn_command(args: argparse.Namespace) -> int:
    from marketdata.databento import import_dbn

    symbols = [s.strip().upper() for s in args.symbols.split(",")] if args.symbols else None
    try:
        day = import_dbn([Path(f) for f in args.files], day=args.date, symbols=symbols)
    except (OSError, ValueError) as err:
        raise UserError(first_line(err), EXIT_BAD_INPUT) from None
    try:
        write_day(day, args.out)
    except OSError as err:
        raise UserError(f"cannot write {args.out}: {err.strerror or type(err).__name__}", EXIT_BAD_INPUT) from None
    m = day.manifest
    print(f"wrote {args.out}: {m.date}, {len(m.symbols)} symbols, {m.quotes:,} quotes, {m.prints:,} prints")
    return 0


def _generator_args(p: argparse.ArgumentParser, seed_required: bool) -> None:
    p.add_argument("--date", type=date.fromisoformat, default=DEFAULT_DAY, help="trading date (default: %(default)s)")
    p.add_argument("--shock", type=parse_shock, action="append", default=[], metavar="HH:MM:WHO:PCT",
                   help="scripted move, e.g. 14:00:ALL:-5 or 10:30:AAPL,MSFT:3 (repeatable)")  # fmt: skip
    p.add_argument("--scale", type=float, default=GeneratedDay.model_fields["scale"].default,
                   help="share of real trade counts (default: %(default)s)")  # fmt: skip
    if seed_required:
        p.add_argument("--seed", type=int, required=True)


def add_commands(sub: argparse._SubParsersAction) -> None:
    market = sub.add_parser("market", help="market data: generate a day, show a symbol, import DBN")
    msub = market.add_subparsers(dest="market_command", required=True)
    p = msub.add_parser("generate", help="write a seeded day of quotes and prints (Parquet)")
    _generator_args(p, seed_required=True)
    p.add_argument("--out", required=True, help="directory for quotes.parquet, prints.parquet, day.json")
    p.set_defaults(run_without_client=generate)
    p = msub.add_parser("show", help="a symbol's L1, truth tick, GRPAN, mark and data age at a time")
    p.add_argument("symbol")
    p.add_argument("--at", required=True, help="exchange time HH:MM[:SS]")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--from", dest="source_dir", help="a day's directory")
    source.add_argument("--seed", type=int, help="a generated day (in memory)")
    _generator_args(p, seed_required=False)
    p.add_argument("--json", action="store_true", help="the MarketView as JSON")
    p.set_defaults(run_without_client=show)
    p = msub.add_parser("import-dbn", help="Databento DBN files (trades, mbp-1) into a day's files")
    p.add_argument("files", nargs="+")
    p.add_argument("--out", required=True)
    p.add_argument("--date", type=date.fromisoformat, help="the trading date (default: from the files)")
    p.add_argument("--symbols", help="comma-separated symbols to keep (default: all)")
    p.set_defaults(run_without_client=import_dbn_command)
