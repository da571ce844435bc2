"""MkDocs hook: pages generated from the code, so they cannot drift from it.

- ``reference/scenario-fields.md``: every scenario field from :mod:`scenarios.schema` with its
  type and range, unit, default (the ``pos2`` / ``road`` value where the shipped files set one)
  and its one-line meaning (:data:`scenarios.schema.DESCRIPTIONS`);
- ``reference/runners.md``: each runner's ``--help``, as argparse prints it;
- ``reference/policies.md``: every registered policy (``policies.available()``), its class, kind
  (distributed or central, heavy or not) and the first line of its docstring;
- ``figures.md``: every figure under ``docs/`` with what it shows, the command that drew it, its
  commit and checkpoint hashes (``runners/figures.py``, ``docs/figures.json``).
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


def policy_table() -> str:
    """The markdown of ``reference/policies.md``: every name ``policies.make`` accepts."""
    import policies
    from policies import registry

    lines = ["# Policy registry", "",
             "Every name `policies.make` (and every runner's `--policy`) accepts, generated from "
             "`policies.available()`. *Distributed*: AP `l` sees only its own CSI and is timed "
             "as the slowest AP; *central*: one call sees every AP, timed as a whole. *Heavy* "
             "solvers take seconds per drop; runners score them on a common subset of drops "
             "(`--heavy-drops`) in a process pool and cache their decisions.", "",
             "| name | class | kind | heavy | what |", "|---|---|---|---|---|"]
    for name in policies.available():
        target = registry._REGISTRY.get(name)
        if isinstance(target, str):
            mod, _, cls_name = target.partition(":")
            cls = getattr(importlib.import_module(mod), cls_name)
        else:
            cls, target = target, getattr(target, "__qualname__", str(target))
        kind = "distributed" if issubclass(cls, policies.DistributedPolicy) else "central"
        doc = " ".join((cls.__doc__ or "").strip().split("\n\n")[0].split())
        heavy = "yes" if getattr(cls, "heavy", False) else "no"
        lines.append(f"| `{name}` | `{target}` | {kind} | {heavy} | {doc.replace('|', '/')} |")
    return "\n".join(lines) + "\n"


def figure_gallery() -> str:
    """The markdown of ``figures.md``: the docs figures, what each shows and how it was made."""
    import json

    from runners import figures

    record = json.loads(figures.RECORD.read_text()).get("figures", {}) \
        if figures.RECORD.is_file() else {}
    lines = ["# Figures", "",
             "Every figure in these pages, regenerated from the shipped checkpoints and seeded "
             "runs by one command, `python runners/figures.py` (about 10 minutes on two busy "
             "cores; `--only FIGURE` for one). `docs/figures.json` records each figure's "
             "command, commit and the SHA-256 of the checkpoints it depends on; "
             "`tests/runners/test_figures.py` fails when a shipped checkpoint changed but the "
             "figures that depend on it were not regenerated. The drop counts are small but "
             "stated in every figure; the commands scale them up.", ""]
    for run in figures.RUNS:
        for name, (_, shows) in run.figures.items():
            rec = record.get(name, {})
            commit = (rec.get("commit") or "?")[:10] + (" (dirty tree)" if rec.get("dirty")
                                                        else "")
            cks = ", ".join(f"`{k}` {v[:8]}" for k, v in rec.get("checkpoints", {}).items())
            image = f"![{name}]({name})" if (figures.DOCS / name).is_file() else \
                "*Not drawn yet: run the command below.*"
            lines += [f"## {name}", "", shows[0].upper() + shows[1:] + ".", "",
                      image, "", "```bash", rec.get("command", run.command()),
                      "```", "",
                      (f"Drawn by its own run at commit {commit}, not yet by "
                       f"`runners/figures.py` ({rec.get('note', '')}); checkpoints: none."
                       if rec.get("regenerated") is False else
                       f"Commit {commit}; {rec.get('seconds', '?')} s on two busy cores; "
                       f"checkpoints: {cks or 'none'}." if rec else
                       "Not regenerated by `runners/figures.py` yet."), ""]
    return "\n".join(lines)


GENERATED = {"reference/scenario-fields.md": scenario_fields, "reference/runners.md": runner_help,
             "reference/policies.md": policy_table, "figures.md": figure_gallery}


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    """Replace the placeholder pages' text with the generated markdown."""
    make = GENERATED.get(page.file.src_uri)
    return make() if make else markdown
