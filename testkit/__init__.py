"""Test kits: fakes and harnesses the tests use. Not shipped (not a package in pyproject.toml, not
in the worker image: .dockerignore)."""
