"""Continue (or train) roles from INIT with the cpu preset, maxmin selection, an epoch cap, a
given width, seed 2.

    python exp5.py SCENARIO N OUT ROLE[,ROLE...] INIT EPOCHS WIDTH
"""
import json
import sys

from policies.training import train

sc, n, out, roles = sys.argv[1], int(sys.argv[2]), sys.argv[3], tuple(sys.argv[4].split(","))
init, epochs, width = sys.argv[5], int(sys.argv[6]), int(sys.argv[7])
po = dict(max_epochs=epochs, time_limit=None, select="maxmin", width=width)
res = train(sc, n, "gram-mlp", "cpu", "cpu", out, roles, 2, threads=1, progress=False,
            preset_overrides=po, init=init)
print(json.dumps(res.summary, indent=1))
