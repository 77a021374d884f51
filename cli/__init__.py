"""The project CLI (`rig …`, or `python -m cli …`)."""
