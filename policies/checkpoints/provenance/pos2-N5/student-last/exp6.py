"""Continue roles from INIT with the cpu preset, 'last' selection, an epoch cap, seed 3.

    python exp6.py SCENARIO N OUT ROLE[,ROLE...] INIT EPOCHS
"""
import json
import sys

from policies.training import train

sc, n, out, roles = sys.argv[1], int(sys.argv[2]), sys.argv[3], tuple(sys.argv[4].split(","))
init, epochs = sys.argv[5], int(sys.argv[6])
po = dict(max_epochs=epochs, time_limit=None, select="last")
res = train(sc, n, "gram-mlp", "cpu", "cpu", out, roles, 3, threads=1, progress=False,
            preset_overrides=po, init=init)
print(json.dumps(res.summary, indent=1))
