"""Temporal workflow definitions: deterministic code only; the logic lives in `domain/`."""
