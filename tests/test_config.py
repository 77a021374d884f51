import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from config.load import DEFAULT_RULES, DEFAULT_UNIVERSE, ConfigError, load_rules, load_universe

ROOT = Path(__file__).resolve().parents[1]


def test_default_config_loads():
    rules, universe = load_rules(), load_universe()
    assert rules.hard_cap_pct == 130
    assert [r.gross_tolerance_pct for r in rules.regimes.values()] == [125, 120, 115, 100]
    assert [r.allow_derisk for r in rules.regimes.values()] == [False, True, True, True]
    assert (rules.session.open, rules.session.close) == ("09:30", "16:30")
    assert len(universe.groups) == 22


def broken(tmp_path, change) -> Path:
    data = yaml.safe_load(DEFAULT_RULES.read_text())
    change(data)
    path = tmp_path / "risk_rules.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _del(path):
    def change(data):
        *parents, last = path
        for p in parents:
            data = data[p]
        del data[last]
    return change


def _set(path, value):
    def change(data):
        *parents, last = path
        for p in parents:
            data = data[p]
        data[last] = value
    return change


CASES = [
    ("unknown regime", _set(("regimes", "LUNCH"), {"start": "12:00", "gross_tolerance_pct": 110, "allow_derisk": True}), "regimes.LUNCH", "unknown name 'LUNCH'; expected 'OPEN_EARLY'"),
    ("tolerance above hard cap", _set(("regimes", "MID", "gross_tolerance_pct"), 135), "regimes.MID.gross_tolerance_pct", "above the hard cap"),
    ("overlapping regimes", _set(("regimes", "LATE", "start"), "09:45"), "regimes.LATE.start", "overlaps"),
    ("regime after close", _set(("regimes", "CLOSE", "start"), "16:45"), "regimes.CLOSE.start", "not before session.close"),
    ("missing key", _del(("hard_cap_pct",)), "hard_cap_pct", "missing key"),
    ("missing regime", _del(("regimes", "CLOSE")), "regimes.CLOSE", "missing regime"),
    ("wrong type", _set(("buckets", "LT", "max_pct"), "ninety"), "buckets.LT.max_pct", "valid number"),
    ("bucket max below target", _set(("buckets", "MM_PURE", "max_pct"), 15), "buckets.MM_PURE.max_pct", "below its target_pct"),
    ("negative number", _set(("derisk", "buffer_pct"), -1), "derisk.buffer_pct", "greater than or equal to 0"),
    ("negative tolerance", _set(("regimes", "OPEN_EARLY", "gross_tolerance_pct"), -5), "regimes.OPEN_EARLY.gross_tolerance_pct", "greater than or equal to 0"),
    ("unknown key", _set(("hard_cap",), 130), "hard_cap", "unknown key"),
    ("probability above 1", _set(("fills", "SOFT_DERISK"), 1.5), "fills.SOFT_DERISK", "less than or equal to 1"),
    ("bad time", _set(("session", "open"), "9:30am"), "session.open", "pattern"),
]


@pytest.mark.parametrize(("name", "change", "key", "problem"), CASES, ids=[c[0] for c in CASES])
def test_broken_rules_name_the_key_and_the_problem(tmp_path, name, change, key, problem):
    path = broken(tmp_path, change)
    with pytest.raises(ConfigError) as info:
        load_rules(path)
    assert info.value.key == key
    assert problem in info.value.problem
    assert str(path) in str(info.value)


def test_bad_yaml_and_missing_file(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("session: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_rules(path)
    with pytest.raises(ConfigError, match="cannot read"):
        load_rules(tmp_path / "absent.yaml")


def test_universe_rejects_unknown_group(tmp_path):
    data = yaml.safe_load(DEFAULT_UNIVERSE.read_text())
    data["instruments"][0]["group"] = "NOT_A_GROUP"
    path = tmp_path / "u.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as info:
        load_universe(path)
    assert info.value.key == "instruments[0].group"


def test_cli_exits_non_zero_without_traceback(tmp_path):
    path = broken(tmp_path, _set(("regimes", "MID", "gross_tolerance_pct"), 135))
    run = subprocess.run([sys.executable, "-m", "cli", "--rules", str(path), "check-config"], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 2
    assert "Traceback" not in run.stderr
    assert "regimes.MID.gross_tolerance_pct: 135.0 is above the hard cap (130.0)" in run.stderr
    ok = subprocess.run([sys.executable, "-m", "cli", "check-config"], cwd=ROOT, capture_output=True, text=True)
    assert ok.returncode == 0 and "22 groups" in ok.stdout
