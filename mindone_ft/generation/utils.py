"""`generate()` for the causal LMs: transformers' API and `GenerationConfig`, decoding on a static key/value cache.

How a call runs (greedy or sampling; beam search is not implemented):

1. `GenerationConfig` is resolved as transformers 5.23 does it: the `generation_config` argument, else a fresh one,
   filled from `model.generation_config` (the checkpoint's `generation_config.json`, or derived from the model
   config), then transformers' global defaults (`max_length=20`, `top_k=50`, ...), then the keyword arguments.
2. The prompts are left-padded to a multiple of `PROMPT_BUCKET` tokens (the extra slots are masked; positions come
   from the attention mask, so the result does not change) and a `StaticCache` of `prompt + max_new_tokens` slots,
   rounded up to a multiple of `CACHE_BUCKET`, is allocated.
3. One prefill call computes the prompt's keys and values and the next-token logits; then one decoding call per
   token. Every decoding call has the same shapes (one token per row, the whole cache), so in GRAPH_MODE a
   `generate()` call compiles two graphs (prefill and decode), and later calls with prompts and lengths in the same
   buckets compile none.
4. The next token is chosen on the host from the `(batch, vocab)` logits with transformers' processors in numpy
   (`logits_process.py`): repetition penalty, minimum lengths, temperature, top-k, top-p, min-p; sampling draws
   from a numpy generator (`seed=` for one call, else numpy's global generator, which `set_seed` seeds).
"""

import copy
import inspect
import json
import logging
import os
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple, Union

import mindspore as ms
import numpy as np
from mindspore import Tensor, nn
from transformers import GenerationConfig
from transformers.utils import ModelOutput

from ..cache_utils import StaticCache
from ..utils import compat
from . import logits_process

logger = logging.getLogger(__name__)

PROMPT_BUCKET = 16  # prompts are left-padded to a multiple of this: one prefill graph per bucket
CACHE_BUCKET = 32  # cache capacity (prompt + new tokens) is rounded up to a multiple of this: one decode graph per bucket
GENERATION_CONFIG_NAME = "generation_config.json"

# GenerationConfig settings that select something `generate()` does not do, and what to use instead.
_UNSUPPORTED_SETTINGS = {
    "num_beams": (lambda v: v is not None and v > 1, "beam search is not implemented: use greedy decoding "
                                                     "(do_sample=False) or sampling (do_sample=True)"),
    "penalty_alpha": (lambda v: v is not None and v > 0, "contrastive search is not implemented"),
    "typical_p": (lambda v: v is not None and v < 1.0, "typical sampling is not implemented: use top_p or min_p"),
    "epsilon_cutoff": (lambda v: v is not None and v > 0.0, "epsilon sampling is not implemented: use min_p"),
    "eta_cutoff": (lambda v: v is not None and v > 0.0, "eta sampling is not implemented: use min_p"),
    "top_h": (lambda v: v is not None, "top-H sampling is not implemented: use top_p or min_p"),
    "no_repeat_ngram_size": (lambda v: v is not None and v > 0, "n-gram blocking is not implemented: use "
                                                                "repetition_penalty"),
    "encoder_no_repeat_ngram_size": (lambda v: v is not None and v > 0, "decoder-only models have no encoder"),
    "encoder_repetition_penalty": (lambda v: v is not None and v != 1.0, "decoder-only models have no encoder"),
    "bad_words_ids": (lambda v: v is not None, "bad_words_ids is not implemented"),
    "force_words_ids": (lambda v: v is not None, "constrained decoding is not implemented"),
    "sequence_bias": (lambda v: v is not None, "sequence_bias is not implemented"),
    "guidance_scale": (lambda v: v is not None and v != 1, "classifier-free guidance is not implemented"),
    "forced_bos_token_id": (lambda v: v is not None, "forced_bos_token_id is not implemented: put the token in "
                                                     "the prompt"),
    "forced_eos_token_id": (lambda v: v is not None, "forced_eos_token_id is not implemented"),
    "suppress_tokens": (lambda v: v is not None, "suppress_tokens is not implemented"),
    "begin_suppress_tokens": (lambda v: v is not None, "begin_suppress_tokens is not implemented"),
    "exponential_decay_length_penalty": (lambda v: v is not None, "exponential_decay_length_penalty is not "
                                                                  "implemented"),
    "renormalize_logits": (lambda v: bool(v), "renormalize_logits is not implemented"),
    "remove_invalid_values": (lambda v: bool(v), "remove_invalid_values is not implemented"),
    "watermarking_config": (lambda v: v is not None, "watermarking is not implemented"),
    "stop_strings": (lambda v: v is not None, "stop_strings is not implemented: use eos_token_id"),
    "output_attentions": (lambda v: bool(v), "generate() does not return attentions: call the model on the "
                                             "generated sequences"),
    "output_hidden_states": (lambda v: bool(v), "generate() does not return hidden states: call the model on the "
                                                "generated sequences"),
    "cache_implementation": (lambda v: v not in (None, "static", "dynamic"),
                             "generate() decodes on a static cache; cache_implementation may be 'static' or None"),
    "prompt_lookup_num_tokens": (lambda v: v is not None, "prompt lookup decoding is not implemented"),
}
_UNSUPPORTED_ARGUMENTS = {
    "inputs_embeds": "pass input_ids",
    "assistant_model": "assisted decoding is not implemented",
    "logits_processor": "custom logits processors are not supported (transformers' take torch tensors)",
    "stopping_criteria": "custom stopping criteria are not supported (transformers' take torch tensors); use "
                         "eos_token_id, max_new_tokens or max_time",
    "prefix_allowed_tokens_fn": "prefix_allowed_tokens_fn is not implemented",
    "negative_prompt_ids": "classifier-free guidance is not implemented",
    "synced_gpus": "not needed: generation runs on one device",
}


@dataclass
class GenerateDecoderOnlyOutput(ModelOutput):
    """transformers' output of `generate(..., return_dict_in_generate=True)` for decoder-only models.

    Args:
        sequences (`Tensor` of shape `(batch_size * num_return_sequences, sequence_length)`): prompt + new tokens.
        scores (`tuple` of `Tensor` `(batch, vocab)`, *optional*): the processed next-token scores of each step
            (with `output_scores=True`).
        logits (`tuple` of `Tensor` `(batch, vocab)`, *optional*): the raw logits of each step
            (with `output_logits=True`).
        past_key_values (`StaticCache`, *optional*): the cache after the last step.
    """

    sequences: Any = None
    scores: Optional[Tuple[Any, ...]] = None
    logits: Optional[Tuple[Any, ...]] = None
    attentions: Optional[Tuple[Any, ...]] = None
    hidden_states: Optional[Tuple[Any, ...]] = None
    past_key_values: Any = None


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def _to_numpy(value) -> np.ndarray:
    if isinstance(value, Tensor):
        return value.asnumpy()
    return np.asarray(value)


def _last_position_logits(logits: Tensor) -> np.ndarray:
    """The `(batch, vocab)` float32 logits of the last position of `(batch, positions, vocab)` logits, sliced on the
    host: slicing (and a float32-to-float32 cast) on the device would be eager ops, each costing host time per
    token. Other dtypes are cast on the device (exact; numpy has no bfloat16)."""
    if logits.dtype != ms.float32:
        logits = logits.astype(ms.float32)
    return logits.asnumpy()[:, -1]


class _DecodingStep:
    """The decoding calls of one `generate()`: the model's compiled graph called with positional arguments, the
    cache layers handed from one call to the next, and the cache object updated once at the end (`store`).

    The arguments are those `MSPreTrainedModel.__call__` would pass for `(input_ids=token, attention_mask, position_ids,
    past_key_values=cache, use_cache=True, logits_to_keep=1)`, so the same compiled graph serves; skipping that
    wrapper (binding the signature, cache object in and out, the output object) saves ~3 ms of host time per
    token (measured on a 6-layer decoder, MindSpore 2.10 CPU: ~5 ms per call through the wrapper, ~2 ms through
    `nn.Cell.__call__`), a large share of a small model's time per token.

    Args:
        model: the causal LM (not in training mode, so that it returns its cache).
        cache (`StaticCache`): the cache after the prefill call.
        attention_mask (`Tensor`): the mask over every cache slot.
        extra_inputs (`dict`): further per-step inputs (GPT-2's `token_type_ids`).
    """

    def __init__(self, model, cache: StaticCache, attention_mask: Tensor, extra_inputs: Dict[str, Any]):
        signature = inspect.signature(model.construct)
        values = dict(input_ids=None, attention_mask=attention_mask, use_cache=True, logits_to_keep=1,
                      output_attentions=False, output_hidden_states=False, return_dict=None, **extra_inputs)
        bound = signature.bind(**{k: v for k, v in values.items() if k in signature.parameters})
        bound.apply_defaults()
        self.arguments = bound.arguments
        self.model, self.cache, self.layers, self.steps = model, cache, cache.layers, 0

    def __call__(self, tokens: np.ndarray, positions: np.ndarray) -> Tensor:
        """Runs the model on one token per row at `positions`; returns the logits `(batch, 1, vocab)`."""
        arguments = self.arguments
        arguments["input_ids"] = Tensor(tokens[:, None].astype(np.int32))
        arguments["position_ids"] = Tensor(positions[:, None].astype(np.int32))
        # graph inputs, not constants: otherwise every step would compile (see `prepare_cache_arguments`)
        arguments["past_key_values"] = ms.mutable(tuple(ms.mutable(tuple(layer)) for layer in self.layers))
        arguments["cache_position"] = Tensor(np.array([self.cache.seen_tokens + self.steps], np.int32))
        outputs = nn.Cell.__call__(self.model, *arguments.values())
        self.layers, self.steps = outputs[1], self.steps + 1  # (logits, cache, ...): no labels, so no loss first
        return outputs[0]

    def store(self) -> None:
        """Puts the layers of the last step into the cache object (`generate(..., return_dict_in_generate=True)`
        returns it)."""
        if self.steps:
            self.cache.update_from_outputs(self.layers, self.steps)


class GenerationMixin:
    """`generate()` and `generation_config` for the causal-LM heads (mixed in before the model's base class)."""

    @classmethod
    def can_generate(cls) -> bool:
        return True

    @property
    def generation_config(self) -> GenerationConfig:
        """The model's default generation settings: the checkpoint's `generation_config.json`, else derived from the
        model config (`GenerationConfig.from_model_config`), as in transformers."""
        config = self.__dict__.get("_generation_config")
        if config is None:
            config = GenerationConfig.from_model_config(self.config)
            self.__dict__["_generation_config"] = config
        return config

    @generation_config.setter
    def generation_config(self, value: GenerationConfig) -> None:
        self.__dict__["_generation_config"] = value

    def _load_generation_config(self, path: str, hub_kwargs: Dict[str, Any]) -> None:
        """Reads `generation_config.json` from a model folder or Hub id, when there is one (`from_pretrained`)."""
        from ..modeling_utils import _resolve_hub_file  # loading helpers live with the model base class

        subfolder = hub_kwargs.get("subfolder") or ""
        if os.path.isdir(path):
            file = os.path.join(path, subfolder, GENERATION_CONFIG_NAME)
            file = file if os.path.isfile(file) else None
        else:
            try:
                file = _resolve_hub_file(path, GENERATION_CONFIG_NAME, hub_kwargs)
            except Exception:  # the weights were found; a missing or unreachable generation config is not fatal
                file = None
        if file is not None:
            with open(file, encoding="utf-8") as handle:
                self.generation_config = GenerationConfig.from_dict(json.load(handle))

    def _prepare_generation_config(self, generation_config: Optional[GenerationConfig],
                                   **kwargs) -> Tuple[GenerationConfig, Dict[str, Any]]:
        """transformers' rule: argument or fresh config < model's generation config < global defaults, then kwargs.
        Returns the config and the keyword arguments that are not generation settings."""
        generation_config = copy.deepcopy(generation_config if generation_config is not None else GenerationConfig())
        generation_config.update(**self.generation_config.to_dict(), defaults_only=True, allow_custom_entries=True)
        generation_config.update(**GenerationConfig._get_default_generation_params(), defaults_only=True)
        model_kwargs = generation_config.update(**kwargs)
        return generation_config, model_kwargs

    def _check_supported(self, generation_config: GenerationConfig, model_kwargs: Dict[str, Any]) -> None:
        accepted = {"token_type_ids"} & set(inspect.signature(self.construct).parameters)
        for name, (is_set, why) in _UNSUPPORTED_SETTINGS.items():
            if is_set(getattr(generation_config, name, None)):
                raise NotImplementedError(f"generate(): {name}={getattr(generation_config, name)!r}: {why}.")
        for name, why in _UNSUPPORTED_ARGUMENTS.items():
            if model_kwargs.get(name) is not None:
                raise NotImplementedError(f"generate(): {name}: {why}.")
        unused = sorted(k for k, v in model_kwargs.items() if k not in _UNSUPPORTED_ARGUMENTS and k not in accepted)
        if unused:
            raise ValueError(f"The following `model_kwargs` are not used by generate(): {unused} (generation "
                             "settings are GenerationConfig's fields; model inputs are input_ids and attention_mask).")

    def generate(
        self,
        input_ids=None,
        attention_mask=None,
        generation_config: Optional[GenerationConfig] = None,
        streamer=None,
        seed: Optional[int] = None,
        **kwargs,
    ) -> Union[Tensor, GenerateDecoderOnlyOutput]:
        r"""Generates token ids after the prompts, like transformers' `generate()` (greedy or sampling).

        Args:
            input_ids (`Tensor` or array of shape `(batch_size, sequence_length)`): the prompts, left-padded for
                batches (`tokenizer.padding_side = "left"`).
            attention_mask (`Tensor` or array of the same shape, *optional*): 0 at padding. When None, it is
                inferred from `pad_token_id` as transformers does.
            generation_config (`transformers.GenerationConfig`, *optional*): settings; others come from
                `model.generation_config` and `kwargs`.
            streamer (*optional*): a transformers streamer (e.g. `TextStreamer(tokenizer)`), given the prompt and
                then each new token (numpy arrays).
            seed (`int`, *optional*): seed of the sampling generator for this call (default: drawn from numpy's
                global generator, which `mindone_ft.set_seed` seeds).
            kwargs: `GenerationConfig` fields (`max_new_tokens`, `min_new_tokens`, `do_sample`, `temperature`,
                `top_k`, `top_p`, `min_p`, `repetition_penalty`, `eos_token_id` (int or list), `pad_token_id`,
                `num_return_sequences`, `max_time`, `output_scores`, `output_logits`, `return_dict_in_generate`).

        Returns:
            `(batch_size * num_return_sequences, prompt + new tokens)` token ids: the prompts as given followed by
            the new tokens; rows that ended early are padded with `pad_token_id`. A MindSpore `Tensor` (of the
            prompts' dtype) for `Tensor` prompts, an int64 numpy array otherwise (what `tokenizer(...,
            return_tensors="np")` gives, and what `tokenizer.batch_decode` reads). A `GenerateDecoderOnlyOutput`
            with `return_dict_in_generate=True`.
        """
        generation_config, model_kwargs = self._prepare_generation_config(generation_config, **kwargs)
        self._check_supported(generation_config, model_kwargs)
        generation_config.validate()
        if input_ids is None:
            raise ValueError("generate() needs input_ids (the tokenized prompts).")
        input_dtype = input_ids.dtype if isinstance(input_ids, Tensor) else None  # None: numpy in, numpy out
        prompts = _to_numpy(input_ids).astype(np.int64)
        if prompts.ndim == 1:
            prompts = prompts[None]

        eos_token_ids = generation_config.eos_token_id
        if isinstance(eos_token_ids, int):
            eos_token_ids = [eos_token_ids]
        eos_token_ids = list(eos_token_ids or [])
        pad_token_id = generation_config.pad_token_id
        if pad_token_id is None and eos_token_ids:
            logger.warning(f"Setting `pad_token_id` to `eos_token_id`:{eos_token_ids[0]} for open-end generation.")
            pad_token_id = eos_token_ids[0]

        mask = self._attention_mask_for_generation(prompts, attention_mask, pad_token_id, eos_token_ids)
        # GPT-2's segments: the prompts' own, and each row's last one for the new tokens (as transformers)
        token_types = model_kwargs.get("token_type_ids")
        token_types = None if token_types is None else _to_numpy(token_types).astype(np.int64).reshape(prompts.shape)
        repeats = generation_config.num_return_sequences or 1
        if repeats > 1:
            prompts, mask = np.repeat(prompts, repeats, axis=0), np.repeat(mask, repeats, axis=0)
            token_types = None if token_types is None else np.repeat(token_types, repeats, axis=0)

        prompt_length = prompts.shape[1]
        if generation_config.max_new_tokens is not None:
            max_length = prompt_length + generation_config.max_new_tokens
        else:
            max_length = generation_config.max_length
        if prompt_length >= max_length:
            logger.warning(f"Input length of input_ids is {prompt_length}, but `max_length` is set to {max_length}: "
                           "nothing to generate. Set `max_new_tokens` instead.")
            return self._generate_output(prompts, input_dtype, generation_config, (), (), None)

        was_training = self.training
        if was_training:  # dropout off, and the model returns its cache only outside training
            self.set_train(False)
        try:
            return self._decode(prompts, mask, token_types, max_length, generation_config, eos_token_ids,
                                pad_token_id, streamer, seed, input_dtype)
        finally:
            if was_training:
                self.set_train(True)

    @staticmethod
    def _attention_mask_for_generation(prompts: np.ndarray, attention_mask, pad_token_id: Optional[int],
                                       eos_token_ids: List[int]) -> np.ndarray:
        """The given mask, else transformers' inference: padding is `pad_token_id` when the prompts contain it and
        it is not an end-of-sequence token. Warns about right padding, like transformers."""
        if attention_mask is not None:
            mask = _to_numpy(attention_mask).astype(np.int64).reshape(prompts.shape)
        elif pad_token_id is not None and (prompts == pad_token_id).any() and pad_token_id not in eos_token_ids:
            mask = (prompts != pad_token_id).astype(np.int64)
        else:
            mask = np.ones_like(prompts)
        if pad_token_id is not None and prompts.shape[0] > 1 and (mask[:, -1] == 0).any():
            logger.warning("A decoder-only architecture is being used, but right-padding was detected! For correct "
                           "generation results, please set `padding_side='left'` when initializing the tokenizer.")
        return mask

    def _decode(self, prompts, mask, token_types, max_length, generation_config, eos_token_ids, pad_token_id, streamer,
                seed, input_dtype):
        batch, prompt_length = prompts.shape
        bucket_length = _round_up(prompt_length, PROMPT_BUCKET)
        extra = bucket_length - prompt_length
        capacity = _round_up(bucket_length + max_length - prompt_length, CACHE_BUCKET)
        fill = pad_token_id if pad_token_id is not None else 0
        padded_ids = np.concatenate([np.full((batch, extra), fill, np.int64), prompts], axis=1)
        padded_mask = np.concatenate([np.zeros((batch, extra), np.int64), mask], axis=1)
        prefill_inputs, step_inputs = {}, {}
        if token_types is not None:
            padded_types = np.concatenate([np.zeros((batch, extra), np.int64), token_types], axis=1)
            prefill_inputs["token_type_ids"] = Tensor(padded_types.astype(np.int32))
            step_inputs["token_type_ids"] = Tensor(token_types[:, -1:].astype(np.int32))
        # transformers' positions for left padding: count of real tokens before, 1 at padding
        positions = np.where(padded_mask == 0, 1, np.cumsum(padded_mask, axis=1) - 1)
        cache_mask = Tensor(np.concatenate([padded_mask, np.ones((batch, capacity - bucket_length), np.int64)],
                                           axis=1).astype(np.int32))
        cache = StaticCache(self.config, batch, capacity, self.dtype)

        processors = logits_process.logits_processors(generation_config, prompt_length, eos_token_ids, mask)
        rng = np.random.default_rng(seed if seed is not None else np.random.randint(0, 2**31 - 1))
        sequences = prompts
        unfinished = np.ones(batch, dtype=bool)
        all_scores, all_logits = [], []
        next_positions = positions[:, -1] + 1
        deadline = None if generation_config.max_time is None else time.time() + generation_config.max_time
        if streamer is not None:
            streamer.put(prompts)

        outputs = self(input_ids=Tensor(padded_ids.astype(np.int32)), attention_mask=cache_mask,
                       position_ids=Tensor(positions.astype(np.int32)), past_key_values=cache, use_cache=True,
                       logits_to_keep=1, return_dict=True, **prefill_inputs)
        decoding_step = _DecodingStep(self, cache, cache_mask, step_inputs)
        last_logits = outputs.logits
        # Every decoding step has the same shapes: after the first, MindSpore's per-call compile check is skipped.
        with compat.repeated_graph_calls(self):
            while True:
                logits = _last_position_logits(last_logits)
                scores = logits_process.apply_processors(processors, sequences, logits)
                if generation_config.do_sample:
                    next_tokens = logits_process.sample(scores, rng)
                else:
                    next_tokens = np.argmax(scores, axis=-1)
                if generation_config.output_scores:
                    all_scores.append(scores)
                if generation_config.output_logits:
                    all_logits.append(logits)
                if pad_token_id is not None:
                    next_tokens = np.where(unfinished, next_tokens, pad_token_id)
                sequences = np.concatenate([sequences, next_tokens[:, None]], axis=1)
                if streamer is not None:
                    streamer.put(next_tokens)
                if eos_token_ids:
                    unfinished &= ~np.isin(next_tokens, eos_token_ids)
                done = not unfinished.any() or sequences.shape[1] >= max_length
                if not done and deadline is not None and time.time() > deadline:
                    done = True
                if done:
                    break
                last_logits = decoding_step(next_tokens, next_positions)
                next_positions = next_positions + 1
        decoding_step.store()
        if streamer is not None:
            streamer.end()
        return self._generate_output(sequences, input_dtype, generation_config, all_scores, all_logits, cache)

    @staticmethod
    def _generate_output(sequences, dtype, generation_config, scores, logits, cache):
        sequences = Tensor(sequences, dtype) if dtype is not None else sequences
        if not generation_config.return_dict_in_generate:
            return sequences
        as_tensors = lambda arrays: tuple(Tensor(a) if dtype is not None else a for a in arrays)  # noqa: E731
        return GenerateDecoderOnlyOutput(
            sequences=sequences,
            scores=as_tensors(scores) if generation_config.output_scores else None,
            logits=as_tensors(logits) if generation_config.output_logits else None,
            past_key_values=cache,
        )
