import sys

if sys.argv[1:] == ["--check"]:  # the health check runs often: it imports nothing of the rig
    from worker.health import check

    raise SystemExit(check())

from worker.main import main

raise SystemExit(main())
