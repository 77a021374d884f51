"""The scale tests (`make test-scale`): the main suite's dev server, worker and strict outcomes."""

from tests.conftest import account, client, config, env, worker  # noqa: F401  (fixtures, for pytest to find here)
from tests.strict_outcomes import pytest_sessionfinish  # noqa: F401
