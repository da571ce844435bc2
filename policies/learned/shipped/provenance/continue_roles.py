"""Train roles warm-started from the checkpoints in INIT (the `cpu` preset with an epoch cap and
no wall-clock cap): every continuation run of the provenance.

    python continue_roles.py SCENARIO N OUT ROLE[,ROLE...] INIT EPOCHS --select maxmin --seed 1

A role without a checkpoint in INIT starts from scratch (at ``--width``); the students read
g1max / g2max from the teachers in INIT.
"""
import argparse
import json

from policies.learned.training import train

p = argparse.ArgumentParser()
p.add_argument("scenario")
p.add_argument("users", type=int)
p.add_argument("out")
p.add_argument("roles")
p.add_argument("init")
p.add_argument("epochs", type=int)
p.add_argument("--select", default="maxmin", choices=("maxmin", "last", "balanced"))
p.add_argument("--width", type=int, default=256)
p.add_argument("--seed", type=int, default=1)
a = p.parse_args()
po = dict(max_epochs=a.epochs, time_limit=None, select=a.select, width=a.width)
res = train(a.scenario, a.users, "gram-mlp", "cpu", "cpu", a.out, tuple(a.roles.split(",")),
            a.seed, threads=1, progress=False, preset_overrides=po, init=a.init)
print(json.dumps(res.summary, indent=1))
