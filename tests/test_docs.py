"""The docs site: every page in the nav, every figure drawn by runners/figures.py and shown,
every tutorial a valid notebook (the strict build itself runs in CI: mkdocs build --strict)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import yaml

from runners import figures

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _nav_files() -> set[str]:
    text = (ROOT / "mkdocs.yml").read_text()
    nav = yaml.safe_load(text[text.index("\nnav:"):])["nav"]
    out: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, str):
            out.add(node)
        elif isinstance(node, list):
            for x in node:
                walk(x)
        elif isinstance(node, dict):
            for x in node.values():
                walk(x)
    walk(nav)
    return out


def test_every_page_and_tutorial_is_in_the_nav() -> None:
    pages = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")
             if "hooks" not in p.parts} | {p.relative_to(DOCS).as_posix()
                                           for p in DOCS.rglob("*.ipynb")}
    nav = _nav_files()
    assert nav <= pages, f"nav names missing files: {sorted(nav - pages)}"
    left = pages - nav
    assert not left, f"pages not in the nav: {sorted(left)}"


def test_every_docs_figure_is_drawn_by_figures_py_and_shown_in_the_gallery() -> None:
    import importlib.util

    drawn = {f for r in figures.RUNS for f in r.figures}
    on_disk = {p.name for p in DOCS.glob("*.png")}
    assert on_disk <= drawn, f"figures no command draws: {sorted(on_disk - drawn)}"
    spec = importlib.util.spec_from_file_location("generate", DOCS / "hooks" / "generate.py")
    hook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hook)
    gallery = hook.figure_gallery()
    for name in on_disk:
        assert f"![{name}]({name})" in gallery, name


def test_tutorials_are_valid_notebooks_with_code() -> None:
    for nb_path in (DOCS / "tutorials").glob("*.ipynb"):
        nb = nbformat.read(nb_path, as_version=4)
        nbformat.validate(nb)
        assert any(c.cell_type == "code" for c in nb.cells), nb_path.name
        assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
