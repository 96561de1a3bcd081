"""The ledger layer: every run recorded in SQLite or PostgreSQL, read back as pandas frames. Private modules; ``seqnb.Ledger`` is the way in."""
