"""Trains a tiny random BERT for one step per sequence length and prints the compiles and losses as JSON.

    python tests/_compile_cache_worker.py --hidden 32 --lengths 8,16   # used by test_compile_cache.py
"""

import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import mindspore as ms  # noqa: E402
from transformers import BertConfig  # noqa: E402

from mindone_ft import BertForSequenceClassification  # noqa: E402
from mindone_ft.mindspore_adapter import AdamW, ReturnLoss, TrainOneStepWrapper, compile_cache  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("--hidden", type=int, default=32)
parser.add_argument("--num_labels", type=int, default=2)
parser.add_argument("--lengths", default="8")
args = parser.parse_args()

ms.set_context(mode=ms.GRAPH_MODE)
ms.set_seed(0)
config = BertConfig(vocab_size=64, hidden_size=args.hidden, num_hidden_layers=1, num_attention_heads=2,
                    intermediate_size=64, max_position_embeddings=64, num_labels=args.num_labels,
                    hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
model = BertForSequenceClassification(config)
model.set_train(True)
step = TrainOneStepWrapper(ReturnLoss(model), AdamW(model.trainable_params(), learning_rate=1e-3), scaler="none",
                           clip_grad="norm")
rng = np.random.default_rng(0)
losses = []
for length in [int(n) for n in args.lengths.split(",")]:
    ids = ms.Tensor(rng.integers(1, 64, size=(2, length)).astype(np.int32))
    labels = ms.Tensor(rng.integers(0, args.num_labels, size=(2,)).astype(np.int32))
    loss, _, overflow = step(ids, None, None, None, None, None, labels)
    losses.append(float(loss.asnumpy()))
events = compile_cache.compile_log().events
folders = sorted(p.name for p in compile_cache.cache_folder().iterdir()) if compile_cache.cache_folder().is_dir() else []
print(json.dumps({"losses": losses, "loads": [e.cache_load for e in events], "seconds": [e.seconds for e in events],
                  "folders": folders}))
