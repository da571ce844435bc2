"""The one place that states cfisac's version (read by ``pyproject.toml`` and every package)."""

__version__ = "0.3.0"
