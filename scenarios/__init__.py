"""Scenarios as data (`*.yaml` here), their model, loader, evaluator and runner."""
