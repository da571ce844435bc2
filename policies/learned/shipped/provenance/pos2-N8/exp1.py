"""pos2 N=8 teachers + first student: the cpu preset (as it was then: 94 % student selection).

    python exp1.py pos2 8 OUT [SECONDS]
"""
import json
import sys

from policies.learned.training import train

sc, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
lim = float(sys.argv[4]) if len(sys.argv) > 4 else 480
po = dict(lr=1e-3, width=256, drops=11000, val_fraction=1000 / 11000, fresh=True,
          plateau_factor=0.5, plateau_patience=10, ssnr_epochs=40, max_epochs=100000,
          patience=150, min_lr=1e-6, time_limit=lim, ssnr_time_limit=60, select="balanced")
res = train(sc, n, "gram-mlp", "cpu", "cpu", out, ("ssnr-teacher", "sinr-teacher", "student"), 0,
            threads=1, progress=False, preset_overrides=po)
print(json.dumps(res.summary, indent=1))
