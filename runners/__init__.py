"""Command-line entry points (thin CLIs over library functions)."""
