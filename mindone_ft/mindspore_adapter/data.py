"""Feeding Hugging Face datasets to MindSpore.

Three pieces:

- `HF2MSDataset` wraps a `datasets.Dataset` as a random-access source for `mindspore.dataset.GeneratorDataset`.
- `NumpyDataCollator` turns a list of rows into a batch of numpy arrays, padding token fields to the batch's
  longest row or up to a small fixed set of bucket lengths. Every new input shape costs a graph compile in
  GRAPH_MODE, so buckets bound the number of compiles.
- `MSDataLoader` is a plain Python iterator over batches. It is about 10x cheaper per batch than
  `GeneratorDataset` on small models, and supports per-epoch reshuffling, sharding across data-parallel ranks,
  grouping by length and resuming mid-epoch.
"""

import math
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Union

import numpy as np

from .environment import get_rank_info

# Fields padded per token, with the value used for padding when there is no tokenizer to ask.
TOKEN_FIELDS = ("input_ids", "token_type_ids", "attention_mask", "special_tokens_mask", "labels")
LABEL_PAD_DEFAULT = -100


def length_buckets(max_length: int, multiple: Optional[int] = None, max_buckets: int = 8) -> List[int]:
    """Bucket lengths `multiple, 2*multiple, ..., max_length` (the last one is `max_length` itself).

    Each bucket used costs one graph compile in GRAPH_MODE (~5 s for a 6-layer BERT train step on CPU), and
    every batch is padded up to its bucket, so finer buckets trade compiles for less padding. By default
    `multiple` is the smallest multiple of 8 that gives at most `max_buckets` buckets: 16 for `max_length`
    128 (16, 32, ..., 128), 64 for 512. On the Rotten Tomatoes reviews (median 26 tokens) in batches of 16
    with `group_by_length`, 16-token buckets pad to 3.7x fewer tokens than `max_length=128`, 32-token ones
    to 3.0x fewer; `benchmarks/run.py` measures the epoch times.
    """
    if multiple is None:
        multiple = 8 * max(1, math.ceil(max_length / (8 * max_buckets)))
    if multiple < 1 or max_length < 1:
        raise ValueError(f"`length_buckets` needs max_length >= 1 and multiple >= 1, got {max_length} and {multiple}.")
    buckets = list(range(multiple, max_length, multiple))
    return buckets + [max_length]


BATCH_ORDERS = ("random", "sequential", "grouped")


def fitted_length_buckets(lengths: Sequence[int], batch_size: int, order: str = "random",
                          multiple: int = 8, max_buckets: int = 8) -> List[int]:
    """Bucket lengths placed where this dataset's batches fall, for the Trainer's default collator.

    `length_buckets(max(lengths))` spaces its buckets evenly, so most of a dataset's batches may share a few of
    them, each padded up to twice the step (on the README's reviews in shuffled batches of 8: buckets 16, ..., 64
    and 65, of which 32, 48, 64 and 65 are used). This keeps as many buckets as those batches are expected to use
    (the last one, and the others expected to take at least half a batch per epoch), hence as many graph
    compiles, and places them, among the multiples of `multiple` and the longest row, where they minimise the
    expected padded length of a batch (there: 40, 48, 56, 65, 6.5% fewer padded tokens). Every row fits: the
    last bucket is the longest row.

    Args:
        lengths (`Sequence[int]`): every row's token count.
        batch_size (`int`): rows per batch.
        order (`str`, *optional*, defaults to `"random"`): how rows are batched: `"random"` (shuffled; a batch's
            longest row follows the distribution of the longest of `batch_size` rows drawn without replacement),
            `"sequential"` (in dataset order: the batches' longest rows are known exactly) or `"grouped"`
            (`group_by_length`: a batch's rows have about the same length, so its longest row follows the
            distribution of the rows' lengths).
        multiple (`int`, *optional*, defaults to 8): bucket lengths below the longest row are multiples of it.
        max_buckets (`int`, *optional*, defaults to 8): as in `length_buckets`, which gives the bucket count.
    """
    if order not in BATCH_ORDERS:
        raise ValueError(f"`order` must be one of {BATCH_ORDERS}, got {order!r}.")
    if batch_size < 1 or multiple < 1 or not len(lengths) or min(lengths) < 0:
        raise ValueError(f"`fitted_length_buckets` needs rows, batch_size >= 1 and multiple >= 1, got "
                         f"{len(lengths)} rows, batch_size {batch_size} and multiple {multiple}.")
    lengths = np.asarray(lengths, dtype=np.int64)
    longest = max(int(lengths.max()), 1)
    even = length_buckets(longest, max_buckets=max_buckets)
    candidates = np.array(sorted({*range(multiple, longest, multiple), longest}))
    # P(a batch's longest row <= c) for each candidate c, then the probability of each candidate's interval.
    if order == "sequential":
        maxima = np.array([lengths[i:i + batch_size].max() for i in range(0, len(lengths), batch_size)])
        at_most = np.searchsorted(np.sort(maxima), candidates, side="right") / len(maxima)
    else:
        rows_at_most = np.searchsorted(np.sort(lengths), candidates, side="right").astype(np.float64)
        if order == "grouped":
            at_most = rows_at_most / len(lengths)
        else:  # all of a batch's rows (a full one, or every row when there are fewer) are among those <= c
            drawn = min(batch_size, len(lengths))
            at_most = np.prod([np.clip((rows_at_most - i) / (len(lengths) - i), 0, 1) for i in range(drawn)], 0)
    mass = np.diff(np.concatenate([[0.0], at_most]))
    batches_per_epoch = math.ceil(len(lengths) / batch_size)
    even_mass = np.bincount(np.searchsorted(even, candidates), weights=mass, minlength=len(even))
    used = even_mass * batches_per_epoch >= 0.5
    used[-1] = True  # the longest row is in some batch every epoch
    count = int(used.sum())
    return _fewest_padded_tokens(candidates.tolist(), mass, count)


def _fewest_padded_tokens(candidates: List[int], mass: np.ndarray, count: int) -> List[int]:
    """The `count` candidates (the last always among them) minimising the expected padded length, when
    `mass[j]` is the probability that a batch's longest row falls in `(candidates[j-1], candidates[j]]` and a
    batch is padded to the smallest chosen candidate that fits it (dynamic programming over the candidates)."""
    m = len(candidates)
    count = min(count, m)
    cumulative = np.concatenate([[0.0], np.cumsum(mass)])
    # best[k][j]: least cost of the intervals up to candidate j with k buckets, the last at candidate j.
    best = np.full((count + 1, m), np.inf)
    choice = np.zeros((count + 1, m), dtype=np.int64)
    for j in range(m):
        best[1][j] = candidates[j] * cumulative[j + 1]
    for k in range(2, count + 1):
        for j in range(k - 1, m):  # the previous bucket at i < j; vectorized over i (m ~ 4096 at 32k tokens)
            costs = best[k - 1][:j] + candidates[j] * (cumulative[j + 1] - cumulative[1:j + 1])
            choice[k][j] = int(np.argmin(costs))
            best[k][j] = costs[choice[k][j]]
    k = int(np.argmin(best[1:, m - 1])) + 1  # fewer buckets when more would not pad less
    chosen, j = [m - 1], m - 1
    while k > 1:
        j = choice[k][j]
        chosen.append(j)
        k -= 1
    return [candidates[j] for j in reversed(chosen)]


class HF2MSDataset:
    """Random-access view of a Hugging Face dataset for `mindspore.dataset.GeneratorDataset`.

    Each item is one row as a dict of numpy arrays, so it is used with a single dict column:

    ```python
    >>> loader = ms.dataset.GeneratorDataset(HF2MSDataset(hf_dataset), column_names="item")
    ```

    Args:
        dataset: a `datasets.Dataset` (or any sequence of dict rows).
    """

    def __init__(self, dataset: Sequence[Mapping[str, Any]]):
        self.dataset = dataset

    def __getitem__(self, index: int) -> Dict[str, Any]:
        row = self.dataset[int(index)]
        return {key: value if isinstance(value, str) else np.asarray(value) for key, value in row.items()}

    def __len__(self) -> int:
        return len(self.dataset)


class NumpyDataCollator:
    """Batches rows into numpy arrays, padding token fields dynamically (like `DataCollatorWithPadding`).

    Fixed-size fields are stacked. Variable-length token fields (`input_ids`, `token_type_ids`,
    `attention_mask`, `special_tokens_mask` and token-level `labels`) are padded to the longest row, or up
    to the smallest of `bucket_boundaries` that fits it. A `label` column is renamed to `labels`. Integer
    fields become int32 and floating fields float32, the dtypes MindSpore models take.

    Works both as `collate_fn(features)` and as a `GeneratorDataset.batch(per_batch_map=...)` function,
    which is called as `collate_fn(features, batch_info)`.

    Args:
        tokenizer (*optional*): gives `pad_token_id`, `pad_token_type_id` and `padding_side`.
        pad_token_id (`int`, *optional*): padding id for `input_ids` when there is no tokenizer.
        padding (`str`, *optional*, defaults to `"longest"`): `"longest"` pads to the longest row of the
            batch (or its bucket); `"max_length"` pads every batch to `max_length`.
        max_length (`int`, *optional*): length for `padding="max_length"`; longer rows raise an error.
        pad_to_multiple_of (`int`, *optional*): round the padded length up to a multiple of this.
        bucket_boundaries (`Sequence[int]`, *optional*): allowed padded lengths, e.g.
            `length_buckets(128)`; a batch is padded up to the smallest one that fits its longest row.
        label_pad_token_id (`int`, *optional*, defaults to -100): padding for token-level `labels`
            (ignored by the loss).
    """

    def __init__(
        self,
        tokenizer: Any = None,
        pad_token_id: Optional[int] = None,
        padding: str = "longest",
        max_length: Optional[int] = None,
        pad_to_multiple_of: Optional[int] = None,
        bucket_boundaries: Optional[Sequence[int]] = None,
        label_pad_token_id: int = LABEL_PAD_DEFAULT,
    ):
        if padding not in ("longest", "max_length"):
            raise ValueError(f"`padding` must be 'longest' or 'max_length', got {padding!r}.")
        if padding == "max_length" and max_length is None:
            raise ValueError("`padding='max_length'` needs `max_length`.")
        if pad_token_id is None and tokenizer is not None:
            pad_token_id = tokenizer.pad_token_id
        self.pad_values = {
            "input_ids": pad_token_id,
            "token_type_ids": getattr(tokenizer, "pad_token_type_id", 0),
            "attention_mask": 0,
            "special_tokens_mask": 1,  # padding is "special", as in Hugging Face tokenizers
            "labels": label_pad_token_id,
        }
        self.padding_side = getattr(tokenizer, "padding_side", "right")
        self.padding = padding
        self.max_length = max_length
        self.pad_to_multiple_of = pad_to_multiple_of
        self.bucket_boundaries = sorted(bucket_boundaries) if bucket_boundaries else None

    def __call__(self, features: Sequence[Mapping[str, Any]], batch_info: Any = None) -> Dict[str, np.ndarray]:
        if len(features) == 0:
            raise ValueError("Cannot collate an empty batch.")
        columns = {key: [row[key] for row in features] for key in features[0]}
        if "label" in columns and "labels" not in columns:
            columns["labels"] = columns.pop("label")
        ragged = {key for key, values in columns.items() if _is_ragged(key, values)}
        target = self._padded_length(columns, ragged) if ragged else None
        return {
            key: self._collate_column(key, values, target if key in ragged else None)
            for key, values in columns.items()
        }

    def _padded_length(self, columns: Dict[str, list], ragged: set) -> int:
        longest = max(len(seq) for key in ragged for seq in columns[key])
        if self.padding == "max_length":
            length = self.max_length
        elif self.bucket_boundaries:
            fitting = [b for b in self.bucket_boundaries if b >= longest]
            if not fitting:
                raise ValueError(
                    f"A row has {longest} tokens, more than the largest bucket {self.bucket_boundaries[-1]}. "
                    "Tokenize with `truncation=True, max_length=...` or add a larger bucket."
                )
            length = fitting[0]
        else:
            length = longest
        if self.pad_to_multiple_of:
            length = math.ceil(length / self.pad_to_multiple_of) * self.pad_to_multiple_of
        if longest > length:
            raise ValueError(
                f"A row has {longest} tokens, more than max_length={length}. Tokenize with `truncation=True`."
            )
        return length

    def _collate_column(self, key: str, values: list, pad_to: Optional[int]) -> np.ndarray:
        _check_numeric(key, values[0])
        if pad_to is not None:
            array = self._pad(key, values, pad_to)
        else:
            array = np.stack([np.asarray(v) for v in values]) if np.ndim(values[0]) else np.asarray(values)
            _check_numeric(key, array)
        return _to_model_dtype(array)

    def _pad(self, key: str, values: list, length: int) -> np.ndarray:
        if key not in TOKEN_FIELDS:
            raise ValueError(
                f"Column '{key}' holds sequences of different lengths and is not a known token field "
                f"{TOKEN_FIELDS}, so there is no padding value for it. Pad it yourself in `map`, or remove it "
                f"with `dataset.remove_columns(['{key}'])`."
            )
        pad_value = self.pad_values[key]
        if all(len(seq) == length for seq in values):  # nothing to pad, even without a pad id
            return np.stack([np.asarray(seq) for seq in values])
        if pad_value is None:
            raise ValueError(
                f"Column '{key}' has rows of different lengths and needs padding, but no pad id is known. "
                "Pass `tokenizer=` or `pad_token_id=` to the collator."
            )
        first = np.asarray(values[0])
        _check_numeric(key, first)
        batch = np.full((len(values), length), pad_value, dtype=first.dtype)
        for i, seq in enumerate(values):
            seq = np.asarray(seq)
            if self.padding_side == "left":
                batch[i, length - len(seq):] = seq
            else:
                batch[i, : len(seq)] = seq
        return batch


def _is_ragged(key: str, values: list) -> bool:
    if not all(_is_sequence(v) for v in values):
        return False
    lengths = {len(v) for v in values}
    # Token fields are padded even when equal-length, so that buckets and max_length apply to every batch.
    return len(lengths) > 1 or key in TOKEN_FIELDS


def _is_sequence(value: Any) -> bool:
    return isinstance(value, (list, tuple)) or (isinstance(value, np.ndarray) and value.ndim == 1)


def _check_numeric(key: str, value: Any) -> None:
    sample = value
    while isinstance(sample, (list, tuple)) and sample:
        sample = sample[0]
    if isinstance(sample, (list, tuple)):  # empty sequence: nothing to check
        return
    if isinstance(sample, str) or (isinstance(value, np.ndarray) and value.dtype.kind in "US"):
        raise TypeError(
            f"Column '{key}' holds text, which the model cannot take. Remove it with "
            f"`dataset.remove_columns(['{key}'])` after tokenizing (the Trainer drops unused columns itself)."
        )
    numeric = isinstance(sample, (int, float, bool, np.number, np.bool_, np.ndarray))
    if not numeric or (isinstance(value, np.ndarray) and value.dtype.kind not in "biuf"):
        raise TypeError(
            f"Column '{key}' holds {type(sample).__name__} values; only numbers and (nested) lists of numbers "
            f"can be batched. Convert it in `map` or remove it with `dataset.remove_columns(['{key}'])`."
        )


def _to_model_dtype(array: np.ndarray) -> np.ndarray:
    """int64 ids and labels become int32 and float64 becomes float32: MindSpore's usual model dtypes."""
    if array.dtype.kind in "iu":
        return array.astype(np.int32, copy=False)
    if array.dtype.kind == "f":
        return array.astype(np.float32, copy=False)
    return array


def numpy_to_tensor(array: np.ndarray) -> "mindspore.Tensor":
    """A MindSpore Tensor of `array` in the dtypes batches use: integers -> int32, floats -> float32, bools stay.

    Models and the Trainer convert numpy inputs with it, so a graph compiled for the collator's batches is reused
    for `model(**tokenizer(texts, return_tensors="np"))`.
    """
    import mindspore as ms

    return ms.Tensor.from_numpy(np.ascontiguousarray(_to_model_dtype(array)))


def group_by_length_indices(
    lengths: Sequence[int], batch_size: int, megabatch_mult: int = 50, seed: int = 0
) -> np.ndarray:
    """Shuffled indices where each run of `batch_size` has similar lengths (Hugging Face's
    `LengthGroupedSampler`): shuffle, cut into megabatches of `megabatch_mult * batch_size`, sort each by
    length (longest first), so batches need little padding but the order stays random."""
    rng = np.random.default_rng(seed)
    permutation = rng.permutation(len(lengths))
    lengths = np.asarray(lengths)
    size = megabatch_mult * batch_size
    megabatches = [permutation[i: i + size] for i in range(0, len(permutation), size)]
    return np.concatenate([mb[np.argsort(-lengths[mb], kind="stable")] for mb in megabatches])


class MSDataLoader:
    """Iterates a dataset in batches of MindSpore tensors (or numpy arrays) in plain Python.

    Args:
        dataset: a `datasets.Dataset` or any sequence of dict rows.
        batch_size (`int`): rows per batch on this rank.
        collate_fn (*optional*): turns a list of rows into a dict of numpy arrays; defaults to
            `NumpyDataCollator()`.
        shuffle (`bool`, *optional*, defaults to `False`): reshuffle every epoch with seed `seed + epoch`.
        seed (`int`, *optional*, defaults to 0): base seed of the shuffle.
        drop_last (`bool`, *optional*, defaults to `False`): drop the last incomplete batch.
        num_shards, shard_id (`int`, *optional*): data-parallel sharding; default to the world size and rank
            recorded by `init_environment`. Shard `r` holds rows `r, r + num_shards, ...` of the epoch's order.
        even_shards (`bool`, *optional*, defaults to `True`): give every shard the same number of rows by
            repeating the start of the order (like `torch.utils.data.DistributedSampler`), so ranks step in
            lockstep, as training needs. `False` repeats no row and shards differ by at most one row:
            evaluation, where a repeated row would change the metrics.
        group_by_length (`bool`, *optional*, defaults to `False`): batch rows of similar length together.
        lengths (`Sequence[int]`, *optional*): row lengths for `group_by_length`; default: length of
            each row's `length_column`.
        length_column (`str`, *optional*, defaults to `"input_ids"`).
        require_labels (`bool` or `Sequence[str]`, *optional*, defaults to `False`): raise if batches lack the
            labels the loss needs: `True` means `labels`; a sequence names them (e.g. `("start_positions",
            "end_positions")` for question answering).
        output_numpy (`bool`, *optional*, defaults to `False`): yield numpy arrays instead of tensors.
    """

    def __init__(
        self,
        dataset: Sequence[Mapping[str, Any]],
        batch_size: int = 8,
        collate_fn: Any = None,
        shuffle: bool = False,
        seed: int = 0,
        drop_last: bool = False,
        num_shards: Optional[int] = None,
        shard_id: Optional[int] = None,
        even_shards: bool = True,
        group_by_length: bool = False,
        lengths: Optional[Sequence[int]] = None,
        length_column: str = "input_ids",
        require_labels: Union[bool, Sequence[str]] = False,
        output_numpy: bool = False,
    ):
        if batch_size < 1:
            raise ValueError(f"`batch_size` must be >= 1, got {batch_size}.")
        rank_info = get_rank_info()
        self.num_shards = num_shards if num_shards is not None else rank_info.world_size
        self.shard_id = shard_id if shard_id is not None else (rank_info.rank if num_shards is None else 0)
        if not 0 <= self.shard_id < self.num_shards:
            raise ValueError(f"`shard_id` must be in [0, {self.num_shards}), got {self.shard_id}.")
        self.even_shards = even_shards
        self.dataset = dataset
        self.batch_size = batch_size
        self.collate_fn = collate_fn if collate_fn is not None else NumpyDataCollator()
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self.group_by_length = group_by_length
        if isinstance(require_labels, bool):
            require_labels = ("labels",) if require_labels else ()
        self.require_labels = tuple(require_labels)
        self.output_numpy = output_numpy
        self.epoch = 0
        self._skip = 0
        if group_by_length and lengths is None:
            lengths = [len(row) for row in _column(dataset, length_column)]
        self.lengths = lengths

    def set_epoch(self, epoch: int) -> None:
        """Selects the shuffle of `epoch` (seed `seed + epoch`), the same on every rank."""
        self.epoch = epoch

    def skip_batches(self, num_batches: int) -> None:
        """Makes the next iteration start after `num_batches` batches of the current epoch, without loading
        them (to resume a run mid-epoch)."""
        self._skip = num_batches

    def __len__(self) -> int:
        rows = self._rows_per_shard()
        return rows // self.batch_size if self.drop_last else math.ceil(rows / self.batch_size)

    def __iter__(self) -> Iterator[Dict[str, Any]]:
        indices = self.shard_indices()
        skip, self._skip = self._skip, 0
        for start in range(skip * self.batch_size, len(self) * self.batch_size, self.batch_size):
            yield self._load_batch(indices[start: start + self.batch_size])

    def shard_indices(self) -> np.ndarray:
        """Row indices this shard visits in the current epoch."""
        order = self._epoch_order()
        if not self.even_shards:
            return order[self.shard_id:: self.num_shards]
        total = self._rows_per_shard() * self.num_shards
        if total > len(order):  # pad so every shard has the same number of rows
            order = np.resize(order, total)
        return order[:total][self.shard_id:: self.num_shards]

    def _rows_per_shard(self) -> int:
        rows = len(self.dataset)
        if not self.even_shards:
            return len(range(self.shard_id, rows, self.num_shards))
        return rows // self.num_shards if self.drop_last else math.ceil(rows / self.num_shards)

    def _epoch_order(self) -> np.ndarray:
        seed = self.seed + self.epoch
        if self.group_by_length:
            return group_by_length_indices(self.lengths, self.batch_size * self.num_shards, seed=seed)
        if self.shuffle:
            return np.random.default_rng(seed).permutation(len(self.dataset))
        return np.arange(len(self.dataset))

    def _load_batch(self, indices: np.ndarray) -> Dict[str, Any]:
        batch = self.collate_fn(_rows(self.dataset, indices))
        missing = [name for name in self.require_labels if name not in batch]
        if missing == ["labels"]:
            raise ValueError(
                f"Training needs a `labels` (or `label`) column to compute the loss; the batch has only "
                f"{sorted(batch)}. Add labels to the dataset or rename your label column to `labels`."
            )
        if missing:
            raise ValueError(
                f"Training needs the label columns {list(self.require_labels)} to compute the loss; the batch has "
                f"only {sorted(batch)} (missing {missing}). Add them to the dataset (or set `label_names`)."
            )
        if self.output_numpy:
            return batch
        import mindspore as ms

        return {key: ms.Tensor.from_numpy(np.ascontiguousarray(value)) for key, value in batch.items()}


def _rows(dataset: Any, indices: np.ndarray) -> List[Dict[str, Any]]:
    """Rows at `indices`; Hugging Face datasets are read column-wise in one call, which is much faster."""
    if hasattr(dataset, "column_names") and hasattr(dataset, "select"):
        columns = dataset[indices.tolist()]
        keys = list(columns)
        return [dict(zip(keys, values)) for values in zip(*(columns[k] for k in keys))]
    return [dataset[int(i)] for i in indices]


def _column(dataset: Any, name: str) -> Union[list, np.ndarray]:
    if hasattr(dataset, "column_names"):
        return dataset[name]
    return [row[name] for row in dataset]
