"""Durable state of the stages, in SQLite: one file per stage, under ``state_dir`` unless configured."""
