from desk.worker import main

raise SystemExit(main())
