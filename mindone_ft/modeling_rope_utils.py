"""Rotary position embedding parameters for `config.rope_parameters`, mirroring transformers 5.23's
`modeling_rope_utils.py`.

Each `_compute_<type>_parameters(config, layer_type=None)` returns `(inv_freq, attention_scaling)`: the inverse
frequencies as a float32 numpy array (computed once, at construction, in the same float32 operation order as
transformers) and the factor the cos/sin are multiplied by; with `layer_type`, from the RoPE parameters of that layer
type (Gemma 3). `ROPE_INIT_FUNCTIONS` maps `rope_type` to them, as in transformers.

`dynamic` (NTK) RoPE depends on the sequence length: its construction-time frequencies are those of
`max_position_embeddings`, and `dynamic_ntk_inv_freq` recomputes them inside the graph for the length of the
current positions (`max(position_ids) + 1`) when that exceeds `max_position_embeddings`, like transformers'
`dynamic_rope_update`. One difference: transformers keeps the frequencies of the longest length it has seen until a
sequence within `max_position_embeddings` comes, so a call after a longer one reuses those; here each call uses its
own length (the result does not depend on earlier calls).
"""

import math
from typing import Callable, Dict, Optional, Tuple

import mindspore as ms
import numpy as np
from mindspore import Tensor, ops

from .modeling_layers import rotary_inv_freq

__all__ = ["ROPE_INIT_FUNCTIONS", "rope_parameters", "rope_dim", "dynamic_ntk_inv_freq"]


def rope_parameters(config, layer_type: Optional[str] = None) -> dict:
    """`config.rope_parameters` after transformers' standardization (`rope_type`, `rope_theta`, and for llama3,
    yarn and longrope `original_max_position_embeddings`); with `layer_type`, the parameters of that layer type
    (configs whose `rope_parameters` are keyed by `layer_types`, like Gemma 3's)."""
    config.standardize_rope_params()
    params = config.rope_parameters
    return params[layer_type] if layer_type is not None else params


def rope_dim(config, layer_type: Optional[str] = None) -> int:
    """Rotated dimensions per head: `head_dim` (or `hidden_size // num_attention_heads`) times
    `partial_rotary_factor`."""
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    return int(head_dim * rope_parameters(config, layer_type).get("partial_rotary_factor", 1.0))


def _compute_default_rope_parameters(config, layer_type: Optional[str] = None) -> Tuple[np.ndarray, float]:
    """The original RoPE: `1 / theta^(2i/dim)`."""
    return rotary_inv_freq(rope_dim(config, layer_type), rope_parameters(config, layer_type)["rope_theta"]), 1.0


def _compute_linear_scaling_rope_parameters(config, layer_type: Optional[str] = None) -> Tuple[np.ndarray, float]:
    """Linear scaling (position interpolation): the default frequencies divided by `factor`."""
    inv_freq, attention_scaling = _compute_default_rope_parameters(config, layer_type)
    factor = np.float32(rope_parameters(config, layer_type)["factor"])
    return (inv_freq / factor).astype(np.float32), attention_scaling


def _compute_dynamic_ntk_parameters(config, layer_type: Optional[str] = None) -> Tuple[np.ndarray, float]:
    """Dynamic NTK scaling at construction time (sequence length `max_position_embeddings`): the base becomes
    `theta * (factor * seq_len / max_position_embeddings - (factor - 1))^(dim / (dim - 2))`, which is `theta` here.
    Longer sequences recompute it in the graph (`dynamic_ntk_inv_freq`)."""
    params = rope_parameters(config, layer_type)
    dim, factor, seq_len = rope_dim(config, layer_type), params["factor"], config.max_position_embeddings
    base = params["rope_theta"] * ((factor * seq_len / config.max_position_embeddings) - (factor - 1)) ** (dim / (dim - 2))
    return rotary_inv_freq(dim, base), 1.0


def dynamic_ntk_inv_freq(position_ids, inv_freq: Tensor, rope_theta: float, factor: float, dim: int,
                         max_position_embeddings: int):
    """The dynamic NTK frequencies for the current positions, inside the graph: those of `max(position_ids) + 1`
    tokens when that exceeds `max_position_embeddings`, else `inv_freq` (the construction-time ones). float32
    throughout, in transformers' operation order (its `_compute_dynamic_ntk_parameters` with a tensor `seq_len`).
    The configuration values are plain arguments: a graph cannot read them from the config object."""
    seq_len = position_ids.max() + 1
    grown = ops.maximum(seq_len, max_position_embeddings).astype(ms.float32)
    base = rope_theta * ((factor * grown / max_position_embeddings) - (factor - 1)) ** (dim / (dim - 2))
    exponents = Tensor(np.arange(0, dim, 2, dtype=np.int64).astype(np.float32) / np.float32(dim))
    scaled = 1.0 / ops.pow(base, exponents)
    return ops.where(seq_len > max_position_embeddings, scaled, inv_freq)


def _yarn_mscale(scale: float, mscale: float = 1) -> float:
    if scale <= 1:
        return 1.0
    return 0.1 * mscale * math.log(scale) + 1.0


def _compute_yarn_parameters(config, layer_type: Optional[str] = None) -> Tuple[np.ndarray, float]:
    """YaRN: frequencies ramped from extrapolated (high-frequency dimensions) to interpolated by `factor`
    (low-frequency ones) between the correction range of `beta_fast`/`beta_slow` rotations, and an attention
    factor (`0.1 * ln(factor) + 1` unless `attention_factor` or `mscale`/`mscale_all_dim` say otherwise)."""
    params = rope_parameters(config, layer_type)
    base = params["rope_theta"]
    dim = rope_dim(config, layer_type)
    factor = params["factor"]
    attention_factor = params.get("attention_factor")
    mscale, mscale_all_dim = params.get("mscale"), params.get("mscale_all_dim")
    original_max_positions = params["original_max_position_embeddings"]
    if factor is None:  # DeepSeek-V3 style configs: the ratio of the two lengths
        factor = config.max_position_embeddings / original_max_positions
    if attention_factor is None:
        if mscale and mscale_all_dim:
            attention_factor = float(_yarn_mscale(factor, mscale) / _yarn_mscale(factor, mscale_all_dim))
        else:
            attention_factor = _yarn_mscale(factor)
    beta_fast = params.get("beta_fast") or 32
    beta_slow = params.get("beta_slow") or 1

    def correction_dim(num_rotations: float) -> float:
        return (dim * math.log(original_max_positions / (num_rotations * 2 * math.pi))) / (2 * math.log(base))

    low, high = correction_dim(beta_fast), correction_dim(beta_slow)
    if params.get("truncate", True):
        low, high = math.floor(low), math.ceil(high)
    low, high = max(low, 0), min(high, dim - 1)
    if low == high:
        high += 0.001  # prevents a division by zero in the ramp

    pos_freqs = np.float32(base) ** (np.arange(0, dim, 2).astype(np.float32) / np.float32(dim))
    inv_freq_extrapolation = np.float32(1.0) / pos_freqs
    inv_freq_interpolation = np.float32(1.0) / (np.float32(factor) * pos_freqs)
    ramp = np.clip((np.arange(dim // 2, dtype=np.float32) - np.float32(low)) / np.float32(high - low), 0, 1)
    extrapolation_factor = np.float32(1) - ramp
    inv_freq = (inv_freq_interpolation * (np.float32(1) - extrapolation_factor)
                + inv_freq_extrapolation * extrapolation_factor)
    return inv_freq.astype(np.float32), attention_factor


def _compute_llama3_parameters(config, layer_type: Optional[str] = None) -> Tuple[np.ndarray, float]:
    """Llama 3.1: wavelengths above `original_max_position_embeddings / low_freq_factor` are divided by `factor`,
    those below `... / high_freq_factor` are kept, and those in between are interpolated smoothly."""
    params = rope_parameters(config, layer_type)
    inv_freq, attention_scaling = _compute_default_rope_parameters(config, layer_type)
    factor = np.float32(params["factor"])
    low_freq_factor, high_freq_factor = params["low_freq_factor"], params["high_freq_factor"]
    old_context_len = params["original_max_position_embeddings"]
    low_freq_wavelen = np.float32(old_context_len / low_freq_factor)
    high_freq_wavelen = np.float32(old_context_len / high_freq_factor)

    wavelen = np.float32(2 * math.pi) / inv_freq
    inv_freq_llama = np.where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq)
    smooth_factor = ((np.float32(old_context_len) / wavelen - np.float32(low_freq_factor))
                     / np.float32(high_freq_factor - low_freq_factor))
    smoothed = (np.float32(1) - smooth_factor) * inv_freq_llama / factor + smooth_factor * inv_freq_llama
    is_medium_freq = ~(wavelen < high_freq_wavelen) & ~(wavelen > low_freq_wavelen)
    return np.where(is_medium_freq, smoothed, inv_freq_llama).astype(np.float32), attention_scaling


# `rope_type` -> function computing `(inv_freq, attention_scaling)` from the config.
ROPE_INIT_FUNCTIONS: Dict[str, Callable[..., Tuple[np.ndarray, float]]] = {
    "default": _compute_default_rope_parameters,
    "linear": _compute_linear_scaling_rope_parameters,
    "dynamic": _compute_dynamic_ntk_parameters,
    "yarn": _compute_yarn_parameters,
    "llama3": _compute_llama3_parameters,
}
