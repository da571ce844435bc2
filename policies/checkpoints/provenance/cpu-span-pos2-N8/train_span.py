"""The run that made the pos2 N=8 unet-span checkpoints (2-core CPU, run from the repo root)."""

import json
import time

import torch

from policies.training import train

torch.set_num_threads(2)
t0 = time.time()
res = train("pos2", 8, "unet-span", "cpu", "cpu", "runs/span-pos2-N8", threads=2, progress=False,
            preset_overrides={"width": 16},
            time_limits={"ssnr-teacher": 90, "sinr-teacher": 330, "student": 330})
print(json.dumps(res.summary, indent=1), time.time() - t0)
