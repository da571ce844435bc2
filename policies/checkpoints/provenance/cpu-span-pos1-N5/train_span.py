import json, time, torch
torch.set_num_threads(2)
from policies.training import train
t0 = time.time()
res = train("pos1", 5, "unet-span", "cpu", "cpu", "runs/span-pos1-N5", threads=2, progress=False,
            preset_overrides={"width": 16},
            time_limits={"ssnr-teacher": 90, "sinr-teacher": 360, "student": 360})
print(json.dumps(res.summary, indent=1), time.time() - t0)
