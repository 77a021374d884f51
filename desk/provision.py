"""Each desk's namespace and Nexus endpoint on a server, with the `temporal` CLI's operator
commands: what `make server` and the tests' dev server run after they start, and what an operator
runs by hand on any other cluster. Safe to run again: what exists is kept, an endpoint's target
is brought up to date.

The compose stack's setup job has no Python: it reads the same desks from
deploy/compose/desks.list, which `python -m desk.provision` (`make compose-desks`) writes from
config/desks.yaml (tests/test_compose.py fails while the two disagree).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from config.load import ConfigError
from desk.registry import DeskRegistry, load_desks
from protocol.contract import DEFAULT_NAMESPACE

TIMEOUT_SECONDS = 30
COMPOSE_DESK_LIST = Path(__file__).resolve().parents[1] / "deploy" / "compose" / "desks.list"


class ProvisionError(Exception):
    """A step the server refused: `str()` is one line naming it."""


def provision_commands(rig_namespace: str, task_queue: str, registry: DeskRegistry) -> list[list[str]]:
    """The operator commands (after `temporal`), in order: each desk's namespace, then its
    endpoint targeting the rig's namespace and the orders' task queue the rig's worker polls."""
    commands: list[list[str]] = []
    for desk in registry.all():
        _refuse_the_rigs(desk.namespace, rig_namespace)
        commands.append(["operator", "namespace", "create", "--namespace", desk.namespace])
        commands.append(
            [
                *("operator", "nexus", "endpoint", "create", "--name", desk.endpoint),
                *("--target-namespace", rig_namespace, "--target-task-queue", task_queue),
                *("--description", f"The rig's desk API for desk {desk.namespace} (accounts: config/desks.yaml)"),
            ]
        )
    return commands


def _refuse_the_rigs(namespace: str, rig_namespace: str) -> None:
    if namespace == rig_namespace:
        raise ProvisionError(f"desk namespace {namespace!r} is the rig's own: a desk needs a namespace of its own")


def compose_desk_list(rig_namespace: str, registry: DeskRegistry) -> str:
    """deploy/compose/desks.list: one `<namespace> <endpoint>` line per desk, for the setup job's
    shell (the endpoint named here, so the shell does not re-derive desk.contract.endpoint_for)."""
    lines = [
        "# The desks whose namespace and Nexus endpoint deploy/compose/temporal-setup.sh ensures:",
        "# written from config/desks.yaml by `make compose-desks`; do not edit by hand.",
    ]
    for desk in registry.all():
        _refuse_the_rigs(desk.namespace, rig_namespace)
        lines.append(f"{desk.namespace} {desk.endpoint}")
    return "\n".join(lines) + "\n"


def provision(temporal: str, address: str, rig_namespace: str, task_queue: str, registry: DeskRegistry) -> list[str]:
    """Run the commands against `address` (blocking: call it from a thread in async code).
    Returns one line per desk."""
    done: list[str] = []
    for command in provision_commands(rig_namespace, task_queue, registry):
        result = _run(temporal, address, command)
        if result.returncode == 0:
            continue
        if "already" not in (result.stderr + result.stdout).lower():
            raise ProvisionError(f"`temporal {' '.join(command[:4])}` failed: {_first_line(result)}")
        if command[1] == "nexus":  # exists: keep it, pointed at this rig
            update = ["operator", "nexus", "endpoint", "update", *command[4:]]
            updated = _run(temporal, address, update)
            if updated.returncode != 0:
                raise ProvisionError(f"`temporal operator nexus endpoint update` failed: {_first_line(updated)}")
    for desk in registry.all():
        done.append(f"desk namespace {desk.namespace}: endpoint {desk.endpoint} → {rig_namespace}/{task_queue}")
    return done


def _run(temporal: str, address: str, command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([temporal, *command, "--address", address], capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=False)


def _first_line(result: subprocess.CompletedProcess[str]) -> str:
    text = (result.stderr or result.stdout or f"exit {result.returncode}").strip()
    return text.splitlines()[0][:300] if text else f"exit {result.returncode}"


def desk_registry_or_say() -> DeskRegistry | None:
    """The registry, or None after saying in one line (stderr) why it cannot be used."""
    try:
        return load_desks()
    except ConfigError as err:
        print(f"config error: {err}", file=sys.stderr, flush=True)
        return None


def provision_or_say(temporal: str, address: str, rig_namespace: str, task_queue: str, registry: DeskRegistry) -> bool:
    """`provision`, printing a line per desk, or the refusal in one line (stderr)."""
    try:
        lines = provision(temporal, address, rig_namespace, task_queue, registry)
    except (ProvisionError, subprocess.TimeoutExpired, OSError) as err:
        print(f"error: {err}", file=sys.stderr, flush=True)
        return False
    for line in lines:
        print(line, flush=True)
    return True


def main(argv: list[str] | None = None) -> int:
    """`python -m desk.provision [PATH]`: write the compose desk list (default
    deploy/compose/desks.list) from the desks file; a broken desks file changes nothing."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) > 1:
        print("usage: python -m desk.provision [PATH]", file=sys.stderr, flush=True)
        return 2
    target = Path(args[0]) if args else COMPOSE_DESK_LIST
    registry = desk_registry_or_say()
    if registry is None:
        return 2
    try:
        text = compose_desk_list(DEFAULT_NAMESPACE, registry)
        target.write_text(text)
    except (ProvisionError, OSError) as err:
        print(f"error: {err}", file=sys.stderr, flush=True)
        return 2
    print(f"{target}: {len(registry.all())} desk(s)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
