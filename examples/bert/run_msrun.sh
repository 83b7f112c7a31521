#!/usr/bin/env bash
# Data-parallel fine-tuning launched with MindSpore's msrun (HCCL on Ascend, NCCL on GPU, mccl on CPU).
#
#   bash examples/bert/run_msrun.sh                      # 2 workers on this machine (CPU works too)
#   WORKERS=8 bash examples/bert/run_msrun.sh            # one Ascend node with 8 NPUs
#   SCRIPT=examples/bert/finetune_in_native_mindspore.py bash examples/bert/run_msrun.sh
#
# Several nodes (rank-table-free msrun, e.g. two Ascend nodes with 8 NPUs each; not run here, see
# docs/distributed.md): run this on every node with the same MASTER_ADDR (node 0's address) and MASTER_PORT,
# WORKERS = total number of workers, LOCAL_WORKERS = workers on this node and NODE_RANK = 0, 1, ...:
#
#   WORKERS=16 LOCAL_WORKERS=8 NODE_RANK=0 MASTER_ADDR=10.0.0.1 bash examples/bert/run_msrun.sh --output_dir /shared/run
#   WORKERS=16 LOCAL_WORKERS=8 NODE_RANK=1 MASTER_ADDR=10.0.0.1 bash examples/bert/run_msrun.sh --output_dir /shared/run
#
# Two nodes on one machine (loopback; what tests/test_multinode.py runs on CPU): the second launch needs
# JOIN=False, because its msrun also tries to start the scheduler on the local master address and, failing to
# bind it, would exit 1 with JOIN=True although the job succeeds:
#
#   WORKERS=2 LOCAL_WORKERS=1 NODE_RANK=0 bash examples/bert/run_msrun.sh --output_dir output/2nodes &
#   WORKERS=2 LOCAL_WORKERS=1 NODE_RANK=1 JOIN=False LOG_DIR=output/msrun_logs_node1 bash examples/bert/run_msrun.sh --output_dir output/2nodes
#
# ZeRO (optimizer state, and with stage 2 gradients, sharded over the workers): add
# `--deepspeed examples/bert/ds_config_zero2.json` or `--fsdp shard_grad_op`.
# Extra arguments are passed to the training script. Worker logs go to LOG_DIR (worker_<rank>.log); only
# rank 0 logs training progress and writes checkpoints.
set -euo pipefail
cd "$(dirname "$0")/../.."

WORKERS=${WORKERS:-2}
LOCAL_WORKERS=${LOCAL_WORKERS:-$WORKERS}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
MASTER_PORT=${MASTER_PORT:-8118}
NODE_RANK=${NODE_RANK:-0}
JOIN=${JOIN:-True}
LOG_DIR=${LOG_DIR:-output/msrun_logs}
SCRIPT=${SCRIPT:-examples/bert/finetune_with_mindspore_trainer.py}
# msrun starts `python` from PATH: put this project's virtual environment first.
if [ -d .venv/bin ]; then export PATH="$PWD/.venv/bin:$PATH"; fi
export GLOG_v=${GLOG_v:-3}

msrun --worker_num="$WORKERS" --local_worker_num="$LOCAL_WORKERS" \
      --master_addr="$MASTER_ADDR" --master_port="$MASTER_PORT" --node_rank="$NODE_RANK" \
      --log_dir="$LOG_DIR" --join="$JOIN" --cluster_time_out=300 \
      "$SCRIPT" "$@"
