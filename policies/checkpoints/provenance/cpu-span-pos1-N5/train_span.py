"""The run that made the pos1 N=5 unet-span checkpoints (2-core CPU, run from the repo root)."""

import json
import time

import torch

from policies.training import train

torch.set_num_threads(2)
t0 = time.time()
res = train("pos1", 5, "unet-span", "cpu", "cpu", "runs/span-pos1-N5", threads=2, progress=False,
            preset_overrides={"width": 16},
            time_limits={"ssnr-teacher": 90, "sinr-teacher": 360, "student": 360})
print(json.dumps(res.summary, indent=1), time.time() - t0)
