"""Metrics: the registry of names and directions, and the score functions tasks use."""
