"""The scale tests (`make test-scale`): outside `make test`'s suite, with its rule that nothing
passes by skipping (tests/strict_outcomes.py)."""

from tests.strict_outcomes import pytest_sessionfinish  # noqa: F401  (a hook, for pytest to find here)
