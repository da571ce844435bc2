"""Continue roles from the checkpoints in INIT (cpu preset, maxmin selection, epoch cap, seed 1).

    python exp3.py SCENARIO N OUT ROLE[,ROLE...] INIT EPOCHS
"""
import json
import sys

from policies.training import train

sc, n, out, roles = sys.argv[1], int(sys.argv[2]), sys.argv[3], tuple(sys.argv[4].split(","))
init, epochs = sys.argv[5], int(sys.argv[6])
po = dict(max_epochs=epochs, time_limit=None, select="maxmin")
res = train(sc, n, "gram-mlp", "cpu", "cpu", out, roles, 1, threads=1, progress=False,
            preset_overrides=po, init=init)
print(json.dumps(res.summary, indent=1))
