"""`python -m venues.ibkr`: the IBKR gateway process (see venues/ibkr/service.py)."""

from venues.ibkr.service import main

raise SystemExit(main())
