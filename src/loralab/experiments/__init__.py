"""Experiments: grid files -> runs, child-process runs with locks, executors (local, Ray,
array-job shards), the SQLite results index, comparison reports and plots."""
