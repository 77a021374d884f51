"""The account workflow\x27s parts (workflows/risk.py wires them)."""
