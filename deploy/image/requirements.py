"""Print the project's runtime dependencies, one per line, from pyproject.toml (the Dockerfile
installs them in a layer of their own, before the source is copied: a source change reuses it).
Only [project].dependencies: the dev server (extra `server`) and the test tools stay out."""

import sys
import tomllib
from pathlib import Path

print("\n".join(tomllib.loads(Path(sys.argv[1]).read_text())["project"]["dependencies"]))
