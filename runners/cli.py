"""The ``cfisac`` console command: one sub-command per runner.

``cfisac compare --scenario pos2 --users 8`` is ``python runners/compare.py --scenario pos2
--users 8``: the sub-command names the runner module (``bench-cvx`` and ``bench_cvx`` both work)
and every argument after it goes to that runner's ``main(argv)`` unchanged, so the flags, the
help and the exit status (0 done, 1 every task failed, 2 a user error, 130 Ctrl-C) are the
runner's own. ``cfisac --version`` prints the version; ``cfisac`` alone lists the runners.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path

from cfisac_env._version import __version__

USAGE = 2


def runners() -> dict[str, str]:
    """Sub-command name -> runner module (every public module of :mod:`runners` but this one)."""
    here = Path(__file__).parent
    names = [m.name for m in pkgutil.iter_modules([str(here)])
             if not m.name.startswith("_") and m.name != "cli"]
    return {name.replace("_", "-"): name for name in sorted(names)}


def first_line(module: str) -> str:
    """The first line of a runner's docstring, read without importing it."""
    import ast

    path = Path(__file__).parent / f"{module}.py"
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def listing() -> str:
    """The help text of ``cfisac`` alone: one line per sub-command."""
    table = runners()
    width = max(map(len, table))
    lines = [f"usage: cfisac {{{','.join(table)}}} [args ...]", "",
             "Run one of cfisac's runners; `cfisac NAME --help` shows its flags.", ""]
    lines += [f"  {name:<{width}}  {first_line(mod)}" for name, mod in table.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Dispatch ``argv[0]`` to ``runners.<name>.main(argv[1:])``; returns its exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in {"-h", "--help", "help"}:
        print(listing())
        return 0 if args else USAGE
    if args[0] == "--version":
        print(f"cfisac {__version__}")
        return 0
    table = runners()
    name = args[0].replace("_", "-")
    if name not in table:
        print(f"error: cfisac: unknown runner {args[0]!r}; choose from {', '.join(table)}",
              file=sys.stderr)
        return USAGE
    module = importlib.import_module(f"runners.{table[name]}")
    return int(module.main(args[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main())
