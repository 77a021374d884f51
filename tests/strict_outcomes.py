"""A run passes only when every test ran and passed: a skipped, xfailed or (non-strict) xpassed
test fails the session. tests/conftest.py uses this hook; it is a module of its own so that
tests/test_gates.py can load it into a pytest of its own (`-p tests.strict_outcomes`)."""

from __future__ import annotations

import pytest

# The terminal reporter's names for the outcomes that pass quietly in a plain pytest run.
QUIET_OUTCOMES = ("skipped", "xfailed", "xpassed")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    counts = {outcome: len(reporter.stats.get(outcome, [])) for outcome in QUIET_OUTCOMES} if reporter else {}
    quiet = ", ".join(f"{n} {outcome}" for outcome, n in counts.items() if n)
    if not quiet:
        return
    print(f"\n{quiet}: a test that is skipped or expected to fail is a failed test here (fix it or delete it)")
    if exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
