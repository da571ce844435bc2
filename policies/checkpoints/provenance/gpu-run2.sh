#!/bin/bash
# Continue the SINR teacher and the student from the shipped checkpoints at a lower learning rate.
# Usage: bash .device/run2.sh OUT TIME_LIMIT_PER_ROLE DEVICE PRESET LR
OUT=$1; LIMIT=$2; DEV=$3; PRESET=$4; LR=$5
PY=${PY:-python3}
export PYTHONUNBUFFERED=1
$PY -c "import gymnasium" 2>/dev/null || { $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site; }
mkdir -p $OUT/work
pids=()
for sn in pos2:8 pos1:5 pos2:5 pos2:2; do
  s=${sn%:*}; n=${sn#*:}
  $PY runners/train.py --scenario $s --users $n --arch unet --preset $PRESET --device $DEV --threads 3 \
    --time-limit $LIMIT --no-progress --role sinr-teacher --role student --init policies/checkpoints --lr $LR \
    --out $OUT/work/$s-N$n > $OUT/work/$s-N$n.log 2>&1 &
  pids+=($!)
done
for p in "${pids[@]}"; do wait $p; done
tail -n 6 $OUT/work/*.log
cd $OUT/work && tar czf ../runs.tar.gz . && cd - >/dev/null && ls -la $OUT
