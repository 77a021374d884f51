import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from config.load import (
    DEFAULT_RULES,
    DEFAULT_UNIVERSE,
    ConfigError,
    load_rules,
    load_universe,
)
from domain.rules import DEFAULT_ADV, ControlsRule, LiquidityRule, LossLimitRule

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
    (
        "unknown regime",
        _set(("regimes", "LUNCH"), {"start": "12:00", "gross_tolerance_pct": 110, "allow_derisk": True}),
        "regimes.LUNCH",
        "unknown name 'LUNCH'; expected 'OPEN_EARLY'",
    ),
    ("tolerance above hard cap", _set(("regimes", "MID", "gross_tolerance_pct"), 135), "regimes.MID.gross_tolerance_pct", "above the hard cap"),
    ("overlapping regimes", _set(("regimes", "LATE", "start"), "09:45"), "regimes.LATE.start", "overlaps"),
    ("regime after close", _set(("regimes", "CLOSE", "start"), "16:45"), "regimes.CLOSE.start", "not before session.close"),
    ("missing key", _del(("hard_cap_pct",)), "hard_cap_pct", "missing key"),
    ("missing regime", _del(("regimes", "CLOSE")), "regimes.CLOSE", "missing regime"),
    ("wrong type", _set(("buckets", "LT", "max_pct"), "ninety"), "buckets.LT.max_pct", "valid number"),
    ("bucket max below target", _set(("buckets", "MM_PURE", "max_pct"), 15), "buckets.MM_PURE.max_pct", "below its target_pct"),
    ("negative number", _set(("derisk", "buffer_pct"), -1), "derisk.buffer_pct", "greater than or equal to 0"),
    (
        "negative tolerance",
        _set(("regimes", "OPEN_EARLY", "gross_tolerance_pct"), -5),
        "regimes.OPEN_EARLY.gross_tolerance_pct",
        "greater than or equal to 0",
    ),
    ("unknown key", _set(("hard_cap",), 130), "hard_cap", "unknown key"),
    ("probability above 1", _set(("fills", "SOFT_DERISK"), 1.5), "fills.SOFT_DERISK", "less than or equal to 1"),
    ("bad time", _set(("session", "open"), "9:30am"), "session.open", "pattern"),
    # Loss limits.
    ("loss soft above hard", _set(("loss_limits", "soft_pct"), 3.0), "loss_limits.soft_pct", "3.0 is above hard_pct (2.0)"),
    ("loss throttle above hard", _set(("loss_limits", "throttle_pct"), 2.5), "loss_limits.throttle_pct", "2.5 is above hard_pct (2.0)"),
    (
        "loss throttle above soft",
        _set(("loss_limits",), {"throttle_pct": 1.6, "soft_pct": 1.5, "hard_pct": 2}),
        "loss_limits.throttle_pct",
        "1.6 is above soft_pct (1.5)",
    ),
    ("loss limit zero", _set(("loss_limits", "throttle_pct"), 0), "loss_limits.throttle_pct", "greater than 0"),
    ("loss limit NaN", _set(("loss_limits", "hard_pct"), float("nan")), "loss_limits.hard_pct", "finite number"),
    ("loss hard missing", _del(("loss_limits", "hard_pct")), "loss_limits.hard_pct", "missing key"),
    # Controls.
    ("max qty zero", _set(("controls", "max_order_quantity", "default"), 0), "controls.max_order_quantity.default", "greater than 0"),
    (
        "max qty bad symbol",
        _set(("controls", "max_order_quantity", "per_symbol"), {"nvda": 100}),
        "controls.max_order_quantity.per_symbol.nvda",
        "is not a symbol",
    ),
    (
        "max qty negative override",
        _set(("controls", "max_order_quantity", "per_symbol"), {"NVDA": -5}),
        "controls.max_order_quantity.per_symbol.NVDA",
        "greater than 0",
    ),
    ("collar above 100", _set(("controls", "price_collar", "band_pct"), 150), "controls.price_collar.band_pct", "less than or equal to 100"),
    ("max position not a number", _set(("controls", "max_position", "max_pct"), "lots"), "controls.max_position.max_pct", "valid number"),
    (
        "max position override zero",
        _set(("controls", "max_position", "per_symbol"), {"AAPL": 0}),
        "controls.max_position.per_symbol.AAPL",
        "greater than 0",
    ),
    ("rate window zero", _set(("controls", "order_rate", "window_seconds"), 0), "controls.order_rate.window_seconds", "greater than 0"),
    ("rate not whole", _set(("controls", "order_rate", "max_orders"), 2.5), "controls.order_rate.max_orders", "valid integer"),
    (
        "duplicate window NaN",
        _set(("controls", "duplicative_orders", "window_seconds"), float("nan")),
        "controls.duplicative_orders.window_seconds",
        "finite number",
    ),
    ("restricted twice", _set(("controls", "restricted", "symbols"), ["GME", "GME"]), "controls.restricted.symbols.GME", "listed twice"),
    ("restricted bad symbol", _set(("controls", "restricted", "symbols"), ["AAPL", "a b"]), "controls.restricted.symbols.a b", "is not a symbol"),
    ("unknown control", _set(("controls", "kill_switch"), True), "controls.kill_switch", "unknown key"),
    # Liquidity.
    ("adv share above 1", _set(("liquidity", "adv_share_per_cycle"), 1.5), "liquidity.adv_share_per_cycle", "less than or equal to 1"),
    ("adv share zero", _set(("liquidity", "adv_share_per_cycle"), 0), "liquidity.adv_share_per_cycle", "greater than 0"),
    ("residual minutes negative", _set(("liquidity", "residual_minutes"), -1), "liquidity.residual_minutes", "greater than or equal to 0"),
]


@pytest.mark.parametrize(("name", "change", "key", "problem"), CASES, ids=[c[0] for c in CASES])
def test_broken_rules_name_the_key_and_the_problem(tmp_path, name, change, key, problem):
    path = broken(tmp_path, change)
    with pytest.raises(ConfigError) as info:
        load_rules(path)
    assert info.value.key == key
    assert problem in info.value.problem
    assert str(path) in str(info.value)
    assert info.value.line is not None and f"{path}:{info.value.line}: " in str(info.value)


def test_a_broken_rule_names_its_line(tmp_path):
    lines = DEFAULT_RULES.read_text().splitlines()
    at = next(n for n, line in enumerate(lines) if line.startswith("hard_cap_pct:"))
    lines[at] = "hard_cap_pct: -5"
    path = tmp_path / "r.yaml"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ConfigError) as info:
        load_rules(path)
    assert (info.value.key, info.value.line) == ("hard_cap_pct", at + 1)
    assert str(info.value) == f"{path}:{at + 1}: hard_cap_pct: Input should be greater than 0 (got -5)"


def test_default_issue16_sections():
    rules, universe = load_rules(), load_universe()
    assert rules.loss_limits == LossLimitRule(throttle_pct=1.0, hard_pct=2.0)
    assert rules.controls == ControlsRule()  # every control off: today's behaviour
    assert rules.liquidity == LiquidityRule()  # no clipping
    raw = yaml.safe_load(DEFAULT_UNIVERSE.read_text())["instruments"]
    assert len(raw) == 44 and all(isinstance(i.get("adv"), int) for i in raw)  # every ADV written out
    assert all(100_000 <= i.adv <= 200_000_000 for i in universe.instruments)


def test_issue16_sections_are_optional(tmp_path):
    path = broken(tmp_path, lambda data: [data.pop(k) for k in ("loss_limits", "controls", "liquidity")])
    rules = load_rules(path)
    assert rules.loss_limits is None
    assert rules.controls == ControlsRule() and rules.liquidity == LiquidityRule()


def test_controls_accept_a_full_configuration(tmp_path):
    controls = {
        "max_order_quantity": {"default": 100000, "per_symbol": {"NVDA": 20000, "BRK.B": 500}},
        "price_collar": {"band_pct": 5},
        "max_position": {"max_pct": 25, "per_symbol": {"SPY": 60}},
        "order_rate": {"max_orders": 50, "window_seconds": 60},
        "duplicative_orders": {"window_seconds": 5},
        "restricted": {"symbols": ["GME", "AMC"]},
    }
    rules = load_rules(broken(tmp_path, _set(("controls",), controls)))
    assert rules.controls.max_order_quantity.limit_for("NVDA") == 20000
    assert rules.controls.max_order_quantity.limit_for("AAPL") == 100000
    assert rules.controls.max_position.limit_for("SPY") == 60 and rules.controls.max_position.limit_for("AAPL") == 25


def test_universe_adv(tmp_path):
    data = yaml.safe_load(DEFAULT_UNIVERSE.read_text())
    data["instruments"][3]["adv"] = 0
    path = tmp_path / "u.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as info:
        load_universe(path)
    assert (info.value.key, "greater than 0" in info.value.problem) == ("instruments.3.adv", True)
    assert path.read_text().splitlines()[info.value.line - 1].strip() == "- adv: 0"  # safe_dump sorts keys: adv opens the fourth instrument
    del data["instruments"][3]["adv"]
    path.write_text(yaml.safe_dump(data))
    assert load_universe(path).instruments[3].adv == DEFAULT_ADV


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
