"""The worker process, client connection settings, and the embedded Temporal dev server."""
