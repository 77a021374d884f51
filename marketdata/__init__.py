"""Market data I/O: the day file set (Parquet), the feeds and the day generator.

Used by activities, the CLI and the bench — never by workflow code (workflows receive
`domain.marketdata.MarketView` models and executions from activities: `venues/sim/exchange_step.py`
matches orders where the data is). The pure rules live in `domain/`: real prints, truth tick,
GRPAN, gates in `marketdata.py`; the SIP sale-condition tables and round lots in
`conditions.py`; marks in `marks.py`; matching in `matching.py`; repricing in `reprice.py`.

- `schema`    the file set's schema and manifest (`DAY_SCHEMA_DOC` documents it), the `Day` container
- `files`     `read_day(dir)` (checked: types and values), `write_day(day, dir)`, `check_day(dir)`
- `feed`      `Feed` (`snapshot`, `prints_between`), `MarkFeed`, `DayFeed` (+ `l1_at`, `book_prints`), `open_feed(spec, …)`
- `generator` `generate_day(recipe, universe, session)`: a seeded, realistic day with shocks
- `databento` `import_dbn(paths, …)`: Databento DBN trades / MBP-1 (an NBBO across publishers) / CMBP-1 into a `Day`
"""
