"""Declarative scenario files (TOML) and their loader: ``scenarios.load("pos2", users=8)``."""

from scenarios.loader import Scenario, available, load, parse_assignment, parse_value

__all__ = ["Scenario", "available", "load", "parse_assignment", "parse_value"]
