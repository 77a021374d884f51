"""Market data I/O: the day file set (Parquet), the feeds and the day generator.

Used by activities, the CLI and the bench — never by workflow code (workflows receive
`domain.marketdata.MarketView` models from activities). The pure rules (real prints, truth
tick, GRPAN, marks, gates, matching) live in `domain/marketdata.py`.

- `schema`    the file set's schema and manifest (`DAY_SCHEMA_DOC` documents it), the `Day` container
- `files`     `read_day(dir)`, `write_day(day, dir)`
- `feed`      `Feed` (`snapshot`, `prints_between`), `MarkFeed`, `DayFeed`, `open_feed(spec, …)`
- `generator` `generate_day(recipe, universe, session)`: a seeded, realistic day with shocks
- `databento` `import_dbn(paths, …)`: Databento DBN trades / MBP-1 into a `Day`
"""
