"""The command-line scaffolding every runner shares: common flags, checked values, exit status.

A runner builds its parser with :func:`parser`, adds the common flags with :func:`add_common`
(``--scenario``, ``--users``, ``--set``, ``--seed``, ``--out``, ``--quiet``, ``--threads``, named
and checked the same everywhere; the decision cache's with :func:`add_cache_flags`) and its body,
``main(argv)``, is wrapped by :func:`entry`::

    @_cli.entry("compare")
    def main(argv: list[str] | None = None) -> int:
        args = parse_args(argv)
        ...                                   # one library call, then printing and plotting

Exit status, by construction:

- :data:`OK` (0): done;
- :data:`FAILED` (1): the run finished but every policy (or task) failed;
- :data:`USAGE` (2): a user error - a bad flag value, an unknown scenario or policy, a scenario
  field out of range, a bad policy option or ``@checkpoint=`` file, an unwritable ``--out`` -
  reported as one line ``error: ...`` on stderr, before any work;
- :data:`INTERRUPTED` (130): Ctrl-C; the runner kept and wrote what finished and recorded
  ``interrupted: true``.
"""

from __future__ import annotations

import argparse
import functools
import math
import sqlite3
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from cfisac_env.runs import write_failure

OK, FAILED, USAGE, INTERRUPTED = 0, 1, 2, 130
MAX_SEED = 2**63 - 1
MAX_THREADS = 1024


class Parser(argparse.ArgumentParser):
    """``ArgumentParser`` whose errors are one line on stderr (exit status 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(USAGE, f"error: {self.prog}: {one_line(message)} (see --help)\n")

    def _get_values(self, action: argparse.Action, arg_strings: list[str]) -> Any:
        # argparse drops a lone "--" value (``--threads=--``) and stores [] without calling
        # ``type``: make it the user error it is.
        if arg_strings == ["--"] and action.nargs not in (argparse.PARSER, argparse.REMAINDER):
            self.error(f"argument {'/'.join(action.option_strings)}: expected a value, got '--'")
        return super()._get_values(action, arg_strings)


    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        ns, rest = super().parse_known_args(args, namespace)
        if hasattr(ns, "format") and hasattr(ns, "series"):     # the figure flags: apply them
            from runners import _plot

            _plot.configure(ns)
        return ns, rest


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """The docstring as written, and every option's default in its help (``(default X)``)
    unless the help already states it or there is none to state (None, False, [])."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        d = action.default
        if ("default" in text or d is None or d is False or d == [] or d is argparse.SUPPRESS
                or not action.option_strings):
            return text
        shown = " ".join(map(str, d)) if isinstance(d, (list, tuple)) else d
        return f"{text} (default {shown})".replace("%", "%%") if "%" not in text else text


def parser(doc: str | None, prog: str | None = None) -> Parser:
    """A :class:`Parser` described by a module docstring (first line; the rest as epilog)."""
    lines = (doc or "").strip().splitlines() or [""]
    return Parser(prog=prog, description=lines[0], epilog="\n".join(lines[1:]) or None,
                  formatter_class=HelpFormatter)


def add_figure_flags(p: argparse.ArgumentParser, db: bool = True) -> None:
    """The figure flags of :func:`runners._plot.add_flags` (``--format``, ``--db``,
    ``--series``); :class:`Parser` applies them when it parses."""
    from runners import _plot

    _plot.add_flags(p, db=db)


def one_line(text: object) -> str:
    """``text`` on one line (newlines and runs of blanks collapsed)."""
    return " ".join(str(text).split())


# ---- value types (argparse ``type=``): each raises ArgumentTypeError with the rule -----------

def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def _real(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def int_in(lo: int, hi: int | None = None) -> Callable[[str], int]:
    """Type: an integer in ``[lo, hi]``."""
    def parse(text: str) -> int:
        value = _integer(text)
        if value < lo or (hi is not None and value > hi):
            raise argparse.ArgumentTypeError(
                f"expected an integer >= {lo}" + (f" and <= {hi}" if hi is not None else "")
                + f", got {text!r}")
        return value
    parse.__name__ = f"integer >= {lo}"
    return parse


def float_in(lo: float | None = None, hi: float | None = None, *,
             lo_open: bool = False) -> Callable[[str], float]:
    """Type: a finite number in ``[lo, hi]`` (``(lo, hi]`` when ``lo_open``)."""
    def parse(text: str) -> float:
        value = _real(text)
        if (lo is not None and (value < lo or (lo_open and value == lo))) or (
                hi is not None and value > hi):
            rule = " and ".join(([f"{'>' if lo_open else '>='} {lo:g}"] if lo is not None
                                 else []) + ([f"<= {hi:g}"] if hi is not None else []))
            raise argparse.ArgumentTypeError(f"expected a number {rule}, got {text!r}")
        return value
    parse.__name__ = "number"
    return parse


positive_int = int_in(1)
nonnegative_int = int_in(0)
positive_float = float_in(0.0, lo_open=True)
nonnegative_float = float_in(0.0)
seed_type = int_in(0, MAX_SEED)
threads_type = int_in(1, MAX_THREADS)


def device_type(text: str) -> str:
    """Type: a torch device that exists here (``cpu``, ``cuda``, ``cuda:1``, ``mps``) or
    ``auto`` (a GPU when present)."""
    if text == "auto":
        return text
    import torch

    try:
        dev = torch.device(text)
    except (RuntimeError, ValueError, TypeError):
        raise argparse.ArgumentTypeError(f"unknown torch device {text!r}; try cpu, cuda, "
                                         "cuda:0, mps or auto") from None
    if dev.type == "cuda" and (not torch.cuda.is_available()
                               or (dev.index or 0) >= torch.cuda.device_count()):
        raise argparse.ArgumentTypeError(f"device {text!r}: no such CUDA device on this "
                                         "machine; use --device cpu")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None)
                                  and torch.backends.mps.is_available()):
        raise argparse.ArgumentTypeError(f"device {text!r}: MPS is not available here; "
                                         "use --device cpu")
    if dev.type not in ("cpu", "cuda", "mps"):
        raise argparse.ArgumentTypeError(f"device {text!r} is not supported; use cpu, cuda "
                                         "or mps")
    return text


def assignment(text: str) -> tuple[str, Any]:
    """Type of ``--set``: ``KEY=VALUE``, the value parsed as TOML (else kept as a string)."""
    import scenarios

    try:
        return scenarios.parse_assignment(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


# ---- common flags ---------------------------------------------------------------------------

COMMON = ("scenario", "users", "set", "seed", "out", "quiet", "threads")


def add_common(p: argparse.ArgumentParser, *, scenario: str | None = "pos2",
               users: int | None = None, many_users: bool = False, seed: int = 0,
               threads: int | None = 1, skip: tuple[str, ...] = ()) -> None:
    """Add the common flags (all of :data:`COMMON` but those in ``skip``) with their checks.

    ``--users`` takes one N (``many_users``: one or more); ``--threads`` default None leaves
    torch's own setting.
    """
    flags = [f for f in COMMON if f not in skip]
    if "scenario" in flags:
        p.add_argument("--scenario", default=scenario, help="scenario name or .toml path "
                       f"(default {scenario})")
    if "users" in flags:
        p.add_argument("--users", type=positive_int, default=users,
                       nargs="+" if many_users else None,
                       help="number of UEs N" + (" (one or more)" if many_users else ""))
    if "set" in flags:
        p.add_argument("--set", action="append", default=[], type=assignment,
                       metavar="KEY=VALUE", help="scenario override, e.g. --set antennas=32 "
                       "or --set traffic.speed=20 (repeatable)")
    if "seed" in flags:
        p.add_argument("--seed", type=seed_type, default=seed,
                       help=f"root of every random draw, 0 .. 2^63-1 (default {seed})")
    if "out" in flags:
        p.add_argument("--out", type=Path, default=None,
                       help="run folder (default runs/<date>-<name>/), created before any work")
    if "quiet" in flags:
        p.add_argument("--quiet", action="store_true", help="no progress bars")
    if "threads" in flags:
        p.add_argument("--threads", type=threads_type, default=threads,
                       help="torch CPU threads" + (f" (default {threads})" if threads else ""))


def load_scenario(args: argparse.Namespace, users: int | None | str = "args") -> Any:
    """``scenarios.load(args.scenario, users=args.users, overrides=args.set)``."""
    import scenarios

    n = args.users if users == "args" else users
    return scenarios.load(args.scenario, users=n, overrides=dict(args.set))


def add_cache_flags(p: argparse.ArgumentParser) -> None:
    """``--cache PATH`` / ``--no-cache``: the decision cache of heavy solvers."""
    from policies.evaluation.cache import DEFAULT_PATH, ENV

    g = p.add_mutually_exclusive_group()
    g.add_argument("--cache", type=Path, default=None, metavar="PATH",
                   help=f"decision cache of heavy solvers (cvx, ns-opt, cb-opt): a drop solved "
                        f"once is never solved again (default ${ENV} or {DEFAULT_PATH})")
    g.add_argument("--no-cache", action="store_true", help="solve every drop, cache nothing")


def open_cache(args: argparse.Namespace) -> Any:
    """The :class:`policies.evaluation.cache.DecisionCache` the flags name (None: no cache)."""
    from policies.evaluation.cache import DecisionCache

    if args.no_cache:
        return None
    return DecisionCache.open(args.cache if args.cache is not None else "default")


def set_threads(threads: int | None) -> None:
    """Pin torch to ``threads`` threads unless None
    (:func:`policies.evaluation.pool.pin_threads`)."""
    from policies.evaluation.pool import pin_threads

    pin_threads(threads, blas=False)


def outcome(done: int, failed: int, interrupted: bool) -> int:
    """Exit status of a run: 130 if interrupted, 1 if nothing succeeded but something failed,
    else 0."""
    if interrupted:
        return INTERRUPTED
    return FAILED if failed and not done else OK


def entry(prog: str) -> Callable[[Callable[[list[str] | None], int | None]],
                                 Callable[[list[str] | None], int]]:
    """Decorator of a runner's ``main(argv)``: its exit status by :func:`run`."""
    def wrap(body: Callable[[list[str] | None], int | None]) -> Callable[[list[str] | None], int]:
        @functools.wraps(body)
        def main(argv: list[str] | None = None) -> int:
            return run(lambda: body(argv), prog)
        return main
    return wrap


def run(body: Callable[[], int | None], prog: str) -> int:
    """Run a runner's ``body`` and turn the ways it can end into an exit status.

    A ``ValueError`` (the library's user-error exception) becomes one line ``error: ...`` and
    :data:`USAGE`; Ctrl-C that escapes the body becomes :data:`INTERRUPTED`; argparse's own
    exits (``--help``, a bad flag) return their status instead of raising ``SystemExit``.
    A write the OS refused (full disk, file-size limit) becomes one line naming the cause
    (:func:`cfisac_env.runs.write_failure`) and :data:`FAILED`. Anything else is a bug and
    keeps its traceback. A warning prints as one line ``warning: ...`` (not Python's
    ``file:line: Category: ...`` and source line).
    """
    formatter = warnings.formatwarning
    warnings.formatwarning = _warning_line
    try:
        rc = body()
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else USAGE)
    except KeyboardInterrupt:
        print(f"\n{prog}: interrupted", file=sys.stderr)
        return INTERRUPTED
    except ValueError as e:
        print(f"error: {prog}: {one_line(e)}", file=sys.stderr)
        return USAGE
    except (OSError, sqlite3.Error) as e:
        why = write_failure(e)
        if why is None:
            raise
        print(f"error: {prog}: {why}", file=sys.stderr)
        return FAILED
    finally:
        warnings.formatwarning = formatter
    return OK if rc is None else int(rc)


def _warning_line(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  line: str | None = None) -> str:
    """:func:`warnings.formatwarning` of the runners: one line."""
    return f"warning: {' '.join(str(message).split())}\n"
