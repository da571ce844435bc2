#!/bin/bash
# Train every shipped checkpoint on the device: per scenario, one process for the chain
# ssnr-teacher -> sinr-teacher -> student -> fixed-lambda and one for fixed-beta; all in parallel.
# Usage: bash .device/run.sh OUT TIME_LIMIT_PER_ROLE DEVICE PRESET
OUT=$1; LIMIT=$2; DEV=$3; PRESET=$4
PY=${PY:-python3}
export PYTHONUNBUFFERED=1
$PY -c "import gymnasium" 2>/dev/null || { $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site; }
$PY -c "import torch; print(torch.__version__, torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
nvidia-smi --query-gpu=name,memory.used --format=csv 2>/dev/null
mkdir -p $OUT/work
pids=()
for sn in pos2:8 pos1:5 pos2:5 pos2:2; do
  s=${sn%:*}; n=${sn#*:}
  common="--scenario $s --users $n --arch unet --preset $PRESET --device $DEV --threads 2 --time-limit $LIMIT --no-progress"
  $PY runners/train.py $common --role ssnr-teacher --role sinr-teacher --role student --role fixed-lambda \
    --out $OUT/work/$s-N$n > $OUT/work/$s-N$n.log 2>&1 &
  pids+=($!)
  $PY runners/train.py $common --role fixed-beta --out $OUT/work/$s-N$n-fb > $OUT/work/$s-N$n-fb.log 2>&1 &
  pids+=($!)
done
for p in "${pids[@]}"; do wait $p; done
tail -n 7 $OUT/work/*.log
cd $OUT/work && tar czf ../runs.tar.gz . && cd - >/dev/null && ls -la $OUT
