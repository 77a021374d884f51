"""The suite's own gates: a run that skips or expects a failure does not pass, and Hypothesis runs
the same examples on every run with no memory between runs (tests/conftest.py)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import settings

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"

QUIET = {
    "skip": "import pytest\n\ndef test_it():\n    getattr(pytest, 'skip')('not today')\n",  # spelled so no skip appears in the tree
    "xfail": "import pytest\n\n@pytest.mark.xfail(reason='known', strict=True)\ndef test_it():\n    assert False\n",
    "xpass": "import pytest\n\n@pytest.mark.xfail(reason='known', strict=False)\ndef test_it():\n    pass\n",
}


def run_alone(tmp_path: Path, source: str, *extra: str) -> subprocess.CompletedProcess[str]:
    """pytest on one tiny file with only this suite's outcome hook loaded (no other plugins: fast)."""
    (tmp_path / "test_tiny.py").write_text(source)
    environ = os.environ | {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.strict_outcomes", *extra, "test_tiny.py"],
        cwd=tmp_path,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("outcome", list(QUIET))
def test_a_skipped_or_expected_failure_fails_the_run(tmp_path: Path, outcome: str) -> None:
    run = run_alone(tmp_path, QUIET[outcome])
    assert run.returncode == pytest.ExitCode.TESTS_FAILED, run.stdout
    assert "is a failed test here" in run.stdout, run.stdout


def test_a_skip_fails_the_run_in_parallel_processes_too(tmp_path: Path) -> None:
    """`make test` runs the suite in pytest-xdist processes: the outcome hook sees their skips."""
    run = run_alone(tmp_path, QUIET["skip"] + "\ndef test_other():\n    pass\n", "-p", "xdist.plugin", "-n", "2")
    assert run.returncode == pytest.ExitCode.TESTS_FAILED, run.stdout
    assert "1 skipped: a test that is skipped" in run.stdout, run.stdout


def test_a_run_that_only_passes_still_passes(tmp_path: Path) -> None:
    run = run_alone(tmp_path, "def test_it():\n    assert True\n")
    assert run.returncode == pytest.ExitCode.OK, run.stdout


def test_the_ci_profile_applies() -> None:
    ci = settings.get_profile("ci")
    assert ci.derandomize and ci.database is None and ci.deadline is not None and ci.print_blob
    if os.environ.get("HYPOTHESIS_PROFILE", "ci") == "ci":  # HYPOTHESIS_PROFILE=dev: exploring on purpose
        default = settings.default
        assert default is not None, "no Hypothesis profile is loaded"
        assert default.derandomize
        assert default.database is None
        assert default.deadline == ci.deadline


def settings_calls() -> list[tuple[Path, ast.Call]]:
    found = []
    for path in sorted(TESTS.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "settings":
                found.append((path, node))
    return found


def test_no_hypothesis_test_opts_out_of_the_profile() -> None:
    """No randomized run, no example database of its own; no deadline only with the reason
    written beside it (a stateful or server-bound test)."""
    calls = settings_calls()
    assert calls, "found no settings(...) at all: the check reads the wrong files"
    problems = []
    for path, call in calls:
        lines = path.read_text().splitlines()
        where = f"{path.relative_to(ROOT)}:{call.lineno}"
        for keyword in call.keywords:
            value = keyword.value
            if keyword.arg == "derandomize" and not (isinstance(value, ast.Constant) and value.value is True):
                problems.append(f"{where}: derandomize must stay True")
            if keyword.arg == "database" and not (isinstance(value, ast.Constant) and value.value is None):
                problems.append(f"{where}: a database of its own")
            if keyword.arg == "deadline" and isinstance(value, ast.Constant) and value.value is None:
                own_line = lines[value.lineno - 1]  # a comment beside it, or one above the call that names it
                around = lines[max(call.lineno - 4, 0) : (call.end_lineno or call.lineno)]
                if "#" not in own_line and not any("#" in line and "deadline" in line.split("#", 1)[1] for line in around):
                    problems.append(f"{where}: deadline=None without a comment saying why")
    assert not problems, "\n".join(problems)


def lint_recipe() -> list[str]:
    """The commands of `make lint`, as the Makefile writes them."""
    lines = (ROOT / "Makefile").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("lint:"))
    recipe = []
    for line in lines[start + 1 :]:
        if not line.startswith("\t"):
            break
        recipe.append(line.strip().replace("$(VENV)", ".venv"))
    return recipe


def test_pre_commit_runs_the_gates_of_make_lint() -> None:
    hooks = [hook for repo in yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())["repos"] for hook in repo["hooks"]]
    # pre-commit passes the changed files (ruff is told to keep pyproject's excludes for them); make passes "."
    entries = [hook["entry"].replace(" --force-exclude", "") + ("" if hook.get("pass_filenames", True) is False else " .") for hook in hooks]
    assert entries == lint_recipe()
