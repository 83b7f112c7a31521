"""Batch generation from a causal-LM checkpoint folder (or Hub id) with mindone_ft's `generate()`.

    python examples/llm/generate.py --model output/llm --prompt "review: a gem of a film sentiment:"
    python examples/llm/generate.py --model output/llm --prompts_file prompts.txt --do_sample --top_p 0.9 --seed 0

Prompts are left-padded into one batch (decoder batches must be); settings not given on the command line come from
the folder's `generation_config.json`. Prints one JSON line per prompt: the prompt and its completion.
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

import mindone_ft  # noqa: E402,F401  (first: it silences transformers' false "PyTorch was not found")
from transformers import AutoTokenizer  # noqa: E402

from mindone_ft import AutoModelForCausalLM  # noqa: E402
from mindone_ft.mindspore_adapter import MindSporeArguments, init_environment  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="checkpoint folder (with its tokenizer) or Hub id")
    parser.add_argument("--tokenizer", help="tokenizer folder or Hub id, if not saved with the model")
    parser.add_argument("--prompt", action="append", default=[], help="a prompt (repeat for several)")
    parser.add_argument("--prompts_file", help="a text file with one prompt per line")
    parser.add_argument("--max_new_tokens", type=int, default=32)
    parser.add_argument("--do_sample", action="store_true")
    parser.add_argument("--temperature", type=float)
    parser.add_argument("--top_k", type=int)
    parser.add_argument("--top_p", type=float)
    parser.add_argument("--min_p", type=float)
    parser.add_argument("--repetition_penalty", type=float)
    parser.add_argument("--num_return_sequences", type=int, default=1)
    parser.add_argument("--seed", type=int, help="sampling seed")
    parser.add_argument("--mode", choices=("graph", "pynative"), default="graph", help="MindSpore execution mode")
    return parser.parse_args(argv)


def main(argv=None) -> list:
    args = parse_args(argv)
    prompts = list(args.prompt)
    if args.prompts_file:
        with open(args.prompts_file, encoding="utf-8") as handle:
            prompts += [line.rstrip("\n") for line in handle if line.strip()]
    if not prompts:
        raise SystemExit("Give at least one --prompt or a --prompts_file.")
    init_environment(MindSporeArguments(mode=args.mode))

    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer or args.model)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(args.model)
    settings = {k: getattr(args, k) for k in ("temperature", "top_k", "top_p", "min_p", "repetition_penalty")
                if getattr(args, k) is not None}
    inputs = tokenizer(prompts, return_tensors="np", padding=True, return_token_type_ids=False)
    outputs = model.generate(**inputs, max_new_tokens=args.max_new_tokens, do_sample=args.do_sample,
                             num_return_sequences=args.num_return_sequences, seed=args.seed, **settings)
    completions = tokenizer.batch_decode(outputs[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
    results = []
    for i, completion in enumerate(completions):
        results.append({"prompt": prompts[i // args.num_return_sequences], "completion": completion})
        print(json.dumps(results[-1]))
    return results


if __name__ == "__main__":
    main()
