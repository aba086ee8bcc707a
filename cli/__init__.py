"""The `ibw` command line, one module per verb: `main` (the parser and `main`), `gateway`,
`dev`, `demo`, `backfill` (`plan` and `backfill`), `snapshot`, `live`, `order`, `query` and
`verify`; `interrupts` turns Ctrl-C and SIGTERM into one clean exit for the long commands.

May import: assets (the demo materializes them), live, engines, ibkr, warehouse, and ibsim
(to start the embedded gateway); nothing imports cli.
"""
