"""Draw a span-attn family's training curves from its stage CSVs (see README.md here).

    python policies/learned/shipped/provenance/curves.py street-road-span --title "..."

Reads ``<folder>/stage*.csv`` (the ``span.csv`` of each stage, in stage order) and writes
``<folder>/curves.png``: validation SSNR, the beams' and the reference's validation min-SINR
(log scale) at N = 5, 8 and 16, and the validation loss, against the iteration (each stage
continues the previous stage's count; every stage validates on its own fixed drops, so the
curves may step between stages).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from runners._plot import plt, save
from runners.train import read_csv

USERS = (5, 8, 16)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("folder", type=Path, help="a folder here, e.g. street-road-span")
    p.add_argument("--title", default=None)
    args = p.parse_args()
    folder = args.folder if args.folder.is_dir() else Path(__file__).parent / args.folder
    stages = sorted(folder.glob("stage*.csv"))
    if not stages:
        raise SystemExit(f"no stage*.csv in {folder}")
    fig, ax = plt.subplots(1, 3, figsize=(15, 4))
    offset = 0.0
    for s, path in enumerate(stages):
        rows = read_csv(path)
        it = [offset + r["iteration"] for r in rows]
        for k, c in zip(USERS, ("C0", "C1", "C2"), strict=True):
            if f"val_g1_N{k}" not in rows[0]:
                continue
            lab = f"N={k}" if s == 0 else None
            ax[0].plot(it, [r[f"val_g1_N{k}"] for r in rows], ".-", ms=3, color=c, label=lab)
            ax[1].plot(it, [r[f"val_g2_N{k}"] for r in rows], ".-", ms=3, color=c,
                       label=None if s else f"beams N={k}")
            ax[1].plot(it, [r[f"val_g2ref_N{k}"] for r in rows], "--", color=c,
                       label=None if s else f"reference N={k}")
        ax[2].plot(it, [r["val_loss"] for r in rows], ".-", ms=3, label=path.stem)
        offset = it[-1]
    ax[1].set_yscale("log")
    for a, label in zip(ax, ("validation SSNR", "validation min-SINR (log)", "validation loss"),
                        strict=True):
        a.set_xlabel("iteration")
        a.set_ylabel(label)
        a.grid(alpha=0.3)
        a.legend(fontsize=7, ncol=2 if a is ax[1] else 1)
    fig.suptitle(args.title or f"{folder.name}: span-attn training")
    save(fig, folder / "curves.png")
    print(f"wrote {folder / 'curves.png'}")


if __name__ == "__main__":
    main()
