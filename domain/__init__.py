"""Pure, deterministic risk core: no I/O, no wall clock, no randomness. Workflows import it."""
