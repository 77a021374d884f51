"""Configuration as data: `risk_rules.yaml`, `universe.yaml`, and their validating loader."""
