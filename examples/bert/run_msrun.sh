#!/usr/bin/env bash
# Data-parallel fine-tuning launched with MindSpore's msrun (HCCL on Ascend, NCCL on GPU, mccl on CPU).
#
#   bash examples/bert/run_msrun.sh                      # 2 workers on this machine (CPU works too)
#   WORKERS=8 bash examples/bert/run_msrun.sh            # one Ascend node with 8 NPUs
#   SCRIPT=examples/bert/finetune_in_native_mindspore.py bash examples/bert/run_msrun.sh
#
# Several nodes: run this on every node with the same MASTER_ADDR/MASTER_PORT, WORKERS = total number of
# workers, LOCAL_WORKERS = workers on this node and NODE_RANK = 0, 1, ... (see docs/distributed.md).
# Extra arguments are passed to the training script. Worker logs go to LOG_DIR (worker_<rank>.log); only
# rank 0 logs training progress and writes checkpoints.
set -euo pipefail
cd "$(dirname "$0")/../.."

WORKERS=${WORKERS:-2}
LOCAL_WORKERS=${LOCAL_WORKERS:-$WORKERS}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
MASTER_PORT=${MASTER_PORT:-8118}
NODE_RANK=${NODE_RANK:-0}
LOG_DIR=${LOG_DIR:-output/msrun_logs}
SCRIPT=${SCRIPT:-examples/bert/finetune_with_mindspore_trainer.py}
# msrun starts `python` from PATH: put this project's virtual environment first.
if [ -d .venv/bin ]; then export PATH="$PWD/.venv/bin:$PATH"; fi
export GLOG_v=${GLOG_v:-3}

msrun --worker_num="$WORKERS" --local_worker_num="$LOCAL_WORKERS" \
      --master_addr="$MASTER_ADDR" --master_port="$MASTER_PORT" --node_rank="$NODE_RANK" \
      --log_dir="$LOG_DIR" --join=True --cluster_time_out=300 \
      "$SCRIPT" "$@"
