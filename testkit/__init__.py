"""Test kits: harnesses and fakes the tests use; not shipped in the worker image."""
