"""Postgres: a tenant's saved connections, the tables behind them, and read-only SQL over them.

``connections`` validates and stores connections (passwords encrypted), ``hosts`` decides which hosts may be
reached, ``engines`` turns a saved connection into a pooled SQLAlchemy engine, ``tables`` lists, reads and
writes tables, ``query`` runs checked read-only SQL, ``questions`` loads tables for the question pipeline.
Nothing here imports SQLAlchemy or Polars at import time: function cold starts stay cheap.
"""
