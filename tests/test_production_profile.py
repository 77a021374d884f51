"""The production profile (config/profiles/production.yaml): it loads through the rules loader with
every control on and costs in P&L, and a broken copy is refused in one line naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from config.load import CONFIG_DIR, ConfigError, load_config, load_rules
from domain.rules import ControlsRule

PRODUCTION = CONFIG_DIR / "profiles" / "production.yaml"


def test_the_production_profile_loads_with_every_control_on_and_costs():
    config = load_config(PRODUCTION)
    controls = config.rules.controls
    off = ControlsRule()
    for name in ControlsRule.model_fields:
        if name == "restricted":  # the firm's own list: on, and empty for the shipped universe
            continue
        assert getattr(controls, name) != getattr(off, name), f"controls.{name} is off in the production profile"
    assert controls.rig_orders.size_limits and controls.quote_sanity.enabled and controls.self_cross.enabled
    costs = config.rules.costs
    assert costs.commission.per_share > 0 and costs.regulatory.sec_fee_per_million == 20.60 and costs.regulatory.taf_max_per_trade == 9.79
    assert config.rules.loss_limits is not None and config.rules.liquidity.adv_share_per_cycle is not None


@pytest.mark.parametrize(
    ("path", "value", "key"),
    [
        (("costs", "regulatory", "sec_fee_per_million"), -1, "costs.regulatory.sec_fee_per_million"),
        (("controls", "message_rate", "max_messages"), 10**9, "controls.message_rate.max_messages"),
        (("controls", "adv_share", "max_share"), 2, "controls.adv_share.max_share"),
        (("controls", "order_to_trade", "max_ratio"), ".inf", "controls.order_to_trade.max_ratio"),
        (("controls", "repeated_executions", "max_fills"), 1, "controls.repeated_executions.max_fills"),
        (("controls", "self_cross", "enabled"), "yes", "controls.self_cross.enabled"),
        (("costs", "broker_commission"), "SOMETIMES", "costs.broker_commission"),
    ],
)
def test_a_broken_profile_is_refused_naming_the_key(tmp_path: Path, path, value, key):
    data = yaml.safe_load(PRODUCTION.read_text())
    node = data
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = float("inf") if value == ".inf" else value
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as info:
        load_rules(broken)
    assert info.value.key == key and "\n" not in str(info.value), info.value
