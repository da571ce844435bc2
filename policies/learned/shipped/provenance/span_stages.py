"""Rebuild a shipped span-attn checkpoint by its recorded stages (see README.md here).

    python policies/learned/shipped/provenance/span_stages.py pos2 --out runs/span-pos2
    python policies/learned/shipped/provenance/span_stages.py pos1 --out runs/span-pos1
    python policies/learned/shipped/provenance/span_stages.py road --out runs/span-road \
        --init runs/span-pos2/stage6/pos2-span-attn.pt
    python policies/learned/shipped/provenance/span_stages.py street --out runs/span-street \
        --init policies/learned/shipped/pos2-span-attn.pt
    python policies/learned/shipped/provenance/span_stages.py pos2-rician --out runs/span-rician \
        --init policies/learned/shipped/pos2-span-attn.pt
    python policies/learned/shipped/provenance/span_stages.py street-road \
        --out runs/span-street-road --init policies/learned/shipped/street-span-attn.pt \
        --seconds 3000

Each stage is one :func:`policies.learned.span_training.train_span` call with the settings the
shipped file was trained with (stage 1 of pos1/pos2 ran the first loss settings, a softer
SINR penalty, before the defaults changed), each stopped at the recorded best iteration.
pos2's stages 3-6 added the current heads (weighted-RZF reference, the AP's own communication
factors, target-relative UE tokens: stage 3 the first, stage 4 the second, stage 5 the third);
they start at zero, so the earlier stages' beams carry over exactly. Replayed with today's code,
every stage trains every head, which reaches the same kind of network, not the same weights.
pos1's stage 3 trained all of them at once; road starts from the finished pos2 network, street
(L = 8) from it too, its weights transferred
(:func:`policies.learned.checkpoints.warm_start_span`). The result is
``OUT/<family>-span-attn.pt``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from policies.learned import checkpoints as store
from policies.learned.span_training import SpanConfig, train_span

STREET_USERS = (*range(1, 17), 16, 16, 16, 16)
# family -> stages: (seed, SpanConfig fields, init from: None | "previous" | other family)
STAGES = {
    "pos2": [(0, {"lr": 2e-3, "sharp": 20.0, "margin": 0.0, "iterations": 1700}, None),
             (1, {"lr": 1e-3, "margin": 0.02, "iterations": 4700}, "previous"),
             # the weighted-RZF reference, the AP's own communication factors and the
             # target-relative UE tokens (their heads start at zero: stage 2's beams exactly)
             (5, {"lr": 1e-3, "margin": 0.0, "iterations": 2100}, "previous"),
             (7, {"lr": 7e-4, "margin": 0.0, "iterations": 400}, "previous"),
             (9, {"lr": 7e-4, "margin": 0.0, "iterations": 2800}, "previous"),
             (11, {"lr": 3.5e-4, "margin": -0.04, "iterations": 4100}, "previous")],
    "pos1": [(0, {"lr": 2e-3, "sharp": 20.0, "margin": 0.0, "iterations": 1600}, None),
             (1, {"lr": 1e-3, "margin": 0.02, "iterations": 2600}, "previous"),
             # every new head at once, from zero
             (13, {"lr": 7e-4, "margin": -0.04, "iterations": 10400}, "previous")],
    # warm start (--init) from the shipped pos2 network (its stage 6), then road drops (the
    # earlier road file: pos2's stage-2 state at its iteration 1800, then 4900 on road drops)
    "road": [(15, {"lr": 5e-4, "margin": -0.04, "iterations": 8300}, "init")],
    # L = 8: pos2's shipped network transferred (checkpoints.warm_start_span), street drops,
    # N = 16 (the scenario's default) four extra times per cycle over 1..16 (STREET_USERS)
    "street": [(17, {"lr": 5e-4, "margin": -0.04, "users": STREET_USERS, "val_drops": 100,
                     "iterations": 3700}, "init"),
               # the beams a little above the reference's level
               (19, {"lr": 3e-4, "margin": 0.04, "users": STREET_USERS, "val_drops": 100,
                     "iterations": 4100}, "previous")],
    # pos2 under Rician fading (K = 10 dB): from the shipped pos2 network (--init), its own drops
    "pos2-rician": [(27, {"lr": 5e-4, "margin": 0.0, "iterations": 11200}, "init")],
    # the street in motion: from the shipped street network (--init), street-road drops (the
    # target anywhere along road.x = [-50, 450] m, UEs on both sidewalks)
    "street-road": [(23, {"lr": 3e-4, "margin": 0.0, "users": STREET_USERS, "val_drops": 100,
                          "iterations": 1_000_000}, "init")],
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("family", choices=sorted(STAGES))
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--init", type=Path, default=None,
                   help="road, street, pos2-rician: the pos2 checkpoint to start from; "
                        "street-road: the street one")
    p.add_argument("--seconds", type=float, default=1e9,
                   help="wall-clock limit of each stage (the recorded stages stop at their "
                        "iteration count)")
    p.add_argument("--start", type=int, default=1,
                   help="resume at this stage, from the checkpoint --resume-from")
    p.add_argument("--resume-from", type=Path, default=None,
                   help="the previous stage's checkpoint (with --start)")
    args = p.parse_args()
    torch.set_num_threads(1)
    prev = args.resume_from
    for k, (seed, fields, init) in enumerate(STAGES[args.family]):
        if k + 1 < args.start:
            continue
        out = args.out / f"stage{k + 1}"
        if init == "init" and args.init is None:
            raise SystemExit(f"{args.family} starts from another checkpoint: pass --init PATH")
        start = prev if init == "previous" else args.init if init == "init" else None

        def save(net, meta, out=out):
            return store.save_span(out / store.span_name(args.family), net,
                                   {"scenario": args.family, **meta})

        res = train_span(args.family, out, SpanConfig(seconds=args.seconds, **fields), seed,
                         save=save, init=start)
        prev = res.checkpoint
        print(f"stage {k + 1}: {res.stopped}, best validation loss {res.best:.4f} -> {prev}")


if __name__ == "__main__":
    main()
