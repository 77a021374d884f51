"""`rig`: check config, work orders, inspect accounts, run scenarios and the demo."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from temporalio.client import WorkflowQueryFailedError, WorkflowQueryRejectedError
from temporalio.service import RPCError

from cli import accounts, builds, market, orders, scenarios
from cli.errors import UserError, first_line
from config.load import DEFAULT_RULES, DEFAULT_UNIVERSE, ConfigError, load_config
from worker.connection import Unreachable, connect, exit_now

EXIT_BAD_INPUT = 2


def cmd_check_config(args: argparse.Namespace) -> int:
    config = load_config(Path(args.rules), Path(args.universe))
    rules = config.rules
    print(f"ok: {args.rules} and {args.universe}")
    print(f"  session {rules.session.open}–{rules.session.close} {rules.session.time_zone}; hard cap {rules.hard_cap_pct:g}%")
    for regime, rule in rules.regimes.items():
        print(f"  {regime.value:<11} from {rule.start}  tolerance {rule.gross_tolerance_pct:g}%  allow_derisk {rule.allow_derisk}")
    print(f"  {len(config.universe.instruments)} instruments in {len(config.universe.groups)} groups")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rig", description=__doc__)
    parser.add_argument("--rules", default=str(DEFAULT_RULES), help="risk_rules.yaml (default: %(default)s)")
    parser.add_argument("--universe", default=str(DEFAULT_UNIVERSE), help="universe.yaml (default: %(default)s)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("check-config", help="validate risk_rules.yaml and universe.yaml").set_defaults(func=cmd_check_config)
    orders.add_commands(sub)
    accounts.add_commands(sub)
    scenarios.add_commands(sub)
    market.add_commands(sub)
    builds.add_commands(sub)
    return parser


async def _with_client(args: argparse.Namespace) -> int:
    if hasattr(args, "run_without_client"):
        return await args.run_without_client(args)
    client = await connect()
    return await args.run(client, args)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(accounts.with_show(sys.argv[1:] if argv is None else argv))
    try:
        if hasattr(args, "func"):
            return args.func(args)
        exit_now(asyncio.run(_with_client(args)))
    except ConfigError as err:
        print(f"config error: {err}", file=sys.stderr)
        exit_now(EXIT_BAD_INPUT)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        exit_now(err.code)
    except (RPCError, WorkflowQueryFailedError, WorkflowQueryRejectedError) as err:  # the server's answer, in one line
        print(f"error: {first_line(err)}", file=sys.stderr)
        exit_now(1)
    except Unreachable as err:
        print(f"error: {err}", file=sys.stderr)
        exit_now(EXIT_BAD_INPUT)
    except KeyboardInterrupt:
        return 130
