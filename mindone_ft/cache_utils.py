"""Key/value caches of the decoder models, with transformers' names: `DynamicCache` and `StaticCache`.

A cache is a Python object at the model's boundary only. Inside `construct` (which MindSpore may compile) the cache
is a tuple with one `(key, value)` pair per layer, each `(batch, num_key_value_heads, length, head_dim)`;
`MSPreTrainedModel.__call__` hands that tuple in and stores the one the model returns back into the object, so a
cache passed as `past_key_values` is updated in place, as in transformers.

- `DynamicCache` grows by the tokens of each call (`length` = tokens seen so far). Every call has new shapes, so in
  GRAPH_MODE each one compiles: use it to inspect or to continue a forward pass by hand.
- `StaticCache` has a fixed capacity (`max_cache_len` slots, written at `cache_position`): every decoding step has
  the same shapes and one compiled graph serves them all. `generate()` uses it.
"""

from typing import List, Optional, Tuple

import mindspore as ms
from mindspore import Tensor, ops

__all__ = ["Cache", "DynamicCache", "StaticCache"]

LayerCache = Tuple[Tensor, Tensor]


class Cache:
    """Base class: one `(key, value)` pair per layer, and the number of tokens seen."""

    is_static = False

    def __init__(self):
        self.layers: List[LayerCache] = []
        self.seen_tokens = 0

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, layer_idx: int) -> LayerCache:
        return self.layers[layer_idx]

    def __iter__(self):
        return iter(self.layers)

    def get_seq_length(self, layer_idx: int = 0) -> int:
        """Tokens already in the cache (transformers' `get_seq_length`)."""
        return self.seen_tokens

    def to_legacy_cache(self) -> Tuple[LayerCache, ...]:
        """The tuple of `(key, value)` pairs (transformers' legacy format)."""
        return tuple(self.layers)

    # --- the model boundary (MSPreTrainedModel.__call__) ---------------------------------------------------------

    def model_inputs(self, seq_length: int, cache_position: Optional[Tensor]):
        """`(past_key_values, cache_position)` for `construct`: the layer tuple (None when empty) and, for a static
        cache, where the `seq_length` new tokens go."""
        raise NotImplementedError

    def update_from_outputs(self, layers: Tuple[LayerCache, ...], seq_length: int) -> None:
        """Stores the layer tuple a call returned (after `seq_length` new tokens)."""
        self.layers = [tuple(layer) for layer in layers]
        self.seen_tokens += seq_length


class DynamicCache(Cache):
    """A cache that grows with every call (transformers' `DynamicCache`).

    Example:
        >>> cache = DynamicCache()
        >>> out = model(input_ids, past_key_values=cache, use_cache=True)     # the prompt
        >>> out = model(next_ids, attention_mask=mask_so_far, past_key_values=cache, use_cache=True)
    """

    def __init__(self, config=None):
        super().__init__()

    @classmethod
    def from_legacy_cache(cls, past_key_values: Optional[Tuple[LayerCache, ...]]) -> "DynamicCache":
        cache = cls()
        if past_key_values:
            cache.layers = [tuple(layer) for layer in past_key_values]
            cache.seen_tokens = past_key_values[0][0].shape[2]
        return cache

    def model_inputs(self, seq_length: int, cache_position: Optional[Tensor]):
        # The positions of a growing cache follow from its length: `construct` derives them.
        return (tuple(self.layers) if self.layers else None), None


class StaticCache(Cache):
    """A cache of `max_cache_len` slots per layer, allocated up front (transformers' `StaticCache`).

    Args:
        config: the model's configuration (layers, key/value heads, head size).
        max_batch_size (`int`): rows.
        max_cache_len (`int`): slots: prompt plus generated tokens must fit.
        dtype: the keys' and values' dtype (the model's).
    """

    is_static = True

    def __init__(self, config, max_batch_size: int, max_cache_len: int, dtype=ms.float32):
        super().__init__()
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
        num_key_value_heads = getattr(config, "num_key_value_heads", None) or config.num_attention_heads
        shape = (max_batch_size, num_key_value_heads, max_cache_len, head_dim)
        self.max_cache_len = max_cache_len
        self.layers = [(ops.zeros(shape, dtype), ops.zeros(shape, dtype)) for _ in range(config.num_hidden_layers)]

    def model_inputs(self, seq_length: int, cache_position: Optional[Tensor]):
        if self.seen_tokens + seq_length > self.max_cache_len:
            raise ValueError(
                f"StaticCache is full: {self.seen_tokens} + {seq_length} tokens > max_cache_len={self.max_cache_len}. "
                "Create it with a larger max_cache_len."
            )
        if cache_position is None:
            cache_position = ops.arange(self.seen_tokens, self.seen_tokens + seq_length, dtype=ms.int32)
        return tuple(self.layers), cache_position


# --- inside `construct`: pure functions of the layer tuple, safe to compile ---------------------------------------


def is_static_cache(past_key_values, cache_position) -> bool:
    """A fixed-capacity cache is passed with the slots to write (`cache_position`); a growing one without."""
    return past_key_values is not None and cache_position is not None


def cache_positions(past_key_values, cache_position, seq_length: int):
    """`(cache_position, key_length)`: the new tokens' indices among the keys, and how many keys attention sees.

    No cache: `0..seq_length-1` and `seq_length` keys. A growing cache of `past` tokens: `past..past+seq_length-1` and
    `past + seq_length` keys. A static cache: the given slots and its capacity.
    """
    if is_static_cache(past_key_values, cache_position):
        return cache_position.astype(ms.int32), past_key_values[0][0].shape[2]
    past_length = past_key_values[0][0].shape[2] if past_key_values is not None else 0
    positions = ops.arange(past_length, past_length + seq_length, dtype=ms.int32)
    return positions, past_length + seq_length


# --- the model boundary (`MSPreTrainedModel.__call__`) -------------------------------------------------------------


class CacheCall:
    """What a call with `past_key_values` in its signature needs after running: which cache object receives the
    returned layers, and whether the model returned any (with `use_cache`, outside training, for outputs that have a
    `past_key_values` field)."""

    def __init__(self, cache: Cache, new_tokens: int, returned: bool):
        self.cache, self.new_tokens, self.returned = cache, new_tokens, returned

    def store(self, outputs: tuple, has_loss: bool) -> tuple:
        """Puts the returned layers into the cache object, and the object in their place in `outputs`."""
        if not self.returned:
            return outputs
        index = 2 if has_loss else 1  # (loss?, logits or last_hidden_state, cache, ...)
        self.cache.update_from_outputs(outputs[index], self.new_tokens)
        return outputs[:index] + (self.cache,) + outputs[index + 1:]


def prepare_cache_arguments(model, arguments: dict) -> CacheCall:
    """Resolves `use_cache` from the config and turns a cache object (or transformers' legacy tuple) into the layer
    tuple and `cache_position` that `construct` takes; `arguments` is updated in place."""
    use_cache = arguments.get("use_cache")
    if use_cache is None:
        use_cache = bool(getattr(model.config, "use_cache", True))
    if "use_cache" in arguments:
        arguments["use_cache"] = use_cache
    output_fields = getattr(model.output_class, "__dataclass_fields__", {})
    returned = bool(use_cache) and not model.training and "past_key_values" in output_fields
    past = arguments.get("past_key_values")
    if past is None:
        cache = DynamicCache()
    elif isinstance(past, Cache):
        cache = past
    elif isinstance(past, (tuple, list)):
        cache = DynamicCache.from_legacy_cache(past)
    else:
        raise TypeError(f"past_key_values must be a DynamicCache, a StaticCache or a tuple of (key, value) pairs, "
                        f"got {type(past).__name__}.")
    tokens = arguments.get("input_ids")
    if tokens is None:
        tokens = arguments.get("inputs_embeds")
    new_tokens = tokens.shape[1] if tokens is not None else 0
    layers, cache_position = cache.model_inputs(new_tokens, arguments.get("cache_position"))
    # Tensors inside a tuple argument are graph constants unless marked mutable: every decoding step would compile.
    arguments["past_key_values"] = ms.mutable(tuple(ms.mutable(layer) for layer in layers)) if layers else None
    if "cache_position" in arguments:
        arguments["cache_position"] = cache_position
    elif cache_position is not None:
        raise ValueError(f"{type(model).__name__} takes no cache_position: pass a DynamicCache, not a StaticCache.")
    return CacheCall(cache, new_tokens, returned)


def decoder_positions(past_key_values, cache_position, position_ids, attention_mask, seq_length: int,
                      use_cache: bool):
    """What a decoder pass derives from its cache arguments, as transformers does:
    `(position_ids, packed_positions, cache_position, key_length, write_position)`.

    - `position_ids`: the given ones, else the tokens' indices counting the cached ones (`cache_position`).
    - `packed_positions`: given positions that restart mark packed sequences, looked for (as in transformers) only
      without an attention mask and without a cache (`use_cache=False`, as padding-free training sets it).
    - `cache_position` / `key_length`: see `cache_positions`; `write_position`: the slots of a static cache, None
      for a growing cache (appended to) or none.
    """
    packed_positions = position_ids if attention_mask is None and not use_cache else None
    static = is_static_cache(past_key_values, cache_position)
    cache_position, key_length = cache_positions(past_key_values, cache_position, seq_length)
    if position_ids is None:
        position_ids = cache_position.expand_dims(0)
    write_position = cache_position if static else None
    return position_ids, packed_positions, cache_position, key_length, write_position
