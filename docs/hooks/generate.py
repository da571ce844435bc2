"""MkDocs hook: pages generated from the code, so they cannot drift from it.

- ``reference/scenario-fields.md``: every scenario field from :mod:`scenarios.schema` with its
  type and range, unit, default (the ``pos2`` / ``road`` value where the shipped files set one)
  and its one-line meaning (:data:`scenarios.schema.DESCRIPTIONS`);
- ``reference/runners.md``: each runner's ``--help``, as argparse prints it.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # the hook runs from mkdocs, not from an installed cfisac
    sys.path.insert(0, str(ROOT))


def _defaults() -> dict[str, Any]:
    """Field path -> value in the shipped ``pos2`` and ``road`` scenarios (road wins)."""
    import scenarios

    out: dict[str, Any] = {}
    for name in ("pos2", "road"):
        for section, fields in scenarios.load(name).config.items():
            if isinstance(fields, dict):
                for key, value in fields.items():
                    out.setdefault(f"{section}.{key}", value)
    return out


def scenario_fields() -> str:
    """The markdown of ``reference/scenario-fields.md``."""
    from scenarios import schema

    defaults = _defaults()
    lines = ["# Scenario fields", "",
             "Every field a scenario file (or `--set key=value`, or an env keyword) may set, "
             "generated from `scenarios/schema.py`. *Default* is the value in the shipped `pos2` "
             "scenario (road fields: `road`); *checked* is what validation accepts.", ""]
    for section, fields in schema.SECTIONS.items():
        lines += [f"## `[{section}]`", ""]
        if fields is None:
            lines += [schema.DESCRIPTIONS.get(section, ""), ""]
            continue
        lines += ["| field | checked | default | meaning |", "|---|---|---|---|"]
        for key, check in fields.items():
            path = f"{section}.{key}"
            default = defaults.get(path, "")
            shown = f"`{default}`" if default != "" else "-"
            lines.append(f"| `{key}` | {schema.expected(check)} | {shown} | "
                         f"{schema.DESCRIPTIONS.get(path, '')} |")
        lines.append("")
    return "\n".join(lines)


def runner_help() -> str:
    """The markdown of ``reference/runners.md``: every runner's ``--help``."""
    from runners import cli

    lines = ["# Runner commands", "",
             "Every runner as `python runners/NAME.py ...` or `cfisac NAME ...` (same flags, same "
             "exit status); generated from each runner's argparse help.", ""]
    for name, module in cli.runners().items():
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf), contextlib.suppress(SystemExit):
            importlib.import_module(f"runners.{module}").main(["--help"])
        lines += [f"## `cfisac {name}`", "", "```text", buf.getvalue().rstrip(), "```", ""]
    return "\n".join(lines)


GENERATED = {"reference/scenario-fields.md": scenario_fields, "reference/runners.md": runner_help}


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    """Replace the placeholder pages' text with the generated markdown."""
    make = GENERATED.get(page.file.src_uri)
    return make() if make else markdown
