"""`rig`: check config, work orders, inspect accounts, run scenarios and the demo."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import NoReturn

from temporalio.client import WorkflowQueryFailedError, WorkflowQueryRejectedError
from temporalio.service import RPCError, RPCStatusCode

from cli import accounts, builds, desks, market, orders, scenarios
from cli.errors import UserError, first_line
from config.load import DEFAULT_RULES, DEFAULT_UNIVERSE, ConfigError, load_config
from worker.connection import Unreachable, address, connect, exit_now

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports Ctrl-C
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, as a shell reports `| head` closing early


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
    desks.add_commands(sub)
    builds.add_commands(sub)
    return parser


async def _with_client(args: argparse.Namespace) -> int:
    if hasattr(args, "run_without_client"):
        return await args.run_without_client(args)
    client = await connect()
    return await args.run(client, args)


def main(argv: list[str] | None = None) -> NoReturn:
    """Every outcome is an exit code and at most one line on stderr: a traceback never shows."""
    try:
        args = build_parser().parse_args(accounts.with_show(sys.argv[1:] if argv is None else argv))
        code = args.func(args) if hasattr(args, "func") else asyncio.run(_with_client(args))
        sys.stdout.flush()  # a closed pipe (`| head`) shows here, inside the handlers below
    except ConfigError as err:
        code = _fail(f"config error: {err}", EXIT_BAD_INPUT)
    except UserError as err:
        code = _fail(f"error: {err}", err.code)
    except (RPCError, WorkflowQueryFailedError, WorkflowQueryRejectedError) as err:  # the server's answer, in one line
        code = _fail(f"error: {first_line(err)}{_server_hint(err)}", 1)
    except Unreachable as err:
        code = _fail(f"error: {err}", EXIT_BAD_INPUT)
    except BrokenPipeError:  # the reader went away: what is left to print goes nowhere, quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        code = EXIT_INTERRUPTED
    except Exception as err:  # noqa: BLE001 — a bug of ours is still one line, never a traceback
        code = _fail(f"error: unexpected {type(err).__name__}: {first_line(err)} (please report it)", 1)
    exit_now(code)


def _fail(line: str, code: int) -> int:
    print(line, file=sys.stderr)
    return code


def _server_hint(err: BaseException) -> str:
    """The server went away mid-command: say where it was and how to start one."""
    if isinstance(err, RPCError) and err.status == RPCStatusCode.UNAVAILABLE:
        return f" (cannot reach Temporal at {address()}: start it with `make server`)"
    return ""
