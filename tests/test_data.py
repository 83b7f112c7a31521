"""HF2MSDataset, NumpyDataCollator and MSDataLoader: padding, buckets, dtypes, errors, sharding, resume."""

import numpy as np
import pytest

import mindspore as ms

from mindone_ft.mindspore_adapter import (
    HF2MSDataset,
    MSDataLoader,
    NumpyDataCollator,
    fitted_length_buckets,
    length_buckets,
)

PAD = 7


def rows(lengths, label=True):
    out = []
    for i, n in enumerate(lengths):
        row = {"input_ids": list(range(1, n + 1)), "attention_mask": [1] * n, "token_type_ids": [0] * n}
        if label:
            row["label"] = i % 2
        out.append(row)
    return out


@pytest.fixture(scope="module")
def tokenizer(model_path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model_path)


def test_dynamic_padding_renames_label_and_uses_int32():
    batch = NumpyDataCollator(pad_token_id=PAD)(rows([2, 4]))
    assert set(batch) == {"input_ids", "attention_mask", "token_type_ids", "labels"}
    np.testing.assert_array_equal(batch["input_ids"], [[1, 2, PAD, PAD], [1, 2, 3, 4]])
    np.testing.assert_array_equal(batch["attention_mask"], [[1, 1, 0, 0], [1, 1, 1, 1]])
    np.testing.assert_array_equal(batch["labels"], [0, 1])
    assert all(v.dtype == np.int32 for v in batch.values())


def test_float_labels_become_float32_and_token_labels_pad_with_minus_100():
    features = [{"input_ids": [1, 2], "labels": 0.5}, {"input_ids": [3], "labels": 1.5}]
    batch = NumpyDataCollator(pad_token_id=0)(features)
    assert batch["labels"].dtype == np.float32
    token_level = [{"input_ids": [1, 2, 3], "labels": [5, 6, 7]}, {"input_ids": [1], "labels": [5]}]
    batch = NumpyDataCollator(pad_token_id=0)(token_level)
    np.testing.assert_array_equal(batch["labels"], [[5, 6, 7], [5, -100, -100]])


def test_buckets_bound_the_number_of_shapes():
    collator = NumpyDataCollator(pad_token_id=0, bucket_boundaries=length_buckets(128))
    assert length_buckets(128) == list(range(16, 129, 16)) and length_buckets(100) == [16, 32, 48, 64, 80, 96, 100]
    assert length_buckets(512) == list(range(64, 513, 64)) and length_buckets(20) == [8, 16, 20]
    assert length_buckets(128, multiple=32) == [32, 64, 96, 128]
    with pytest.raises(ValueError, match="multiple >= 1"):
        length_buckets(128, multiple=0)
    assert collator(rows([3, 5]))["input_ids"].shape == (2, 16)
    assert collator(rows([3, 40]))["input_ids"].shape == (2, 48)
    with pytest.raises(ValueError, match="largest bucket 128.*truncation=True"):
        collator(rows([3, 129]))


def _padded_and_shapes(lengths, buckets, batch_size, epochs, seed=0):
    """Padded tokens and the set of padded lengths of `epochs` shuffled epochs batched with `buckets`."""
    rng, lengths, padded, shapes = np.random.default_rng(seed), np.asarray(lengths), 0, set()
    for _ in range(epochs):
        order = rng.permutation(len(lengths))
        for start in range(0, len(lengths), batch_size):
            batch = lengths[order[start:start + batch_size]]
            bucket = min(b for b in buckets if b >= batch.max())
            shapes.add(bucket)
            padded += bucket * len(batch)
    return padded, shapes


@pytest.mark.parametrize("batch_size", [8, 32])
def test_fitted_buckets_pad_less_with_no_more_graphs(batch_size):
    """Short reviews, like the README demo's (median ~26 tokens, a long tail): even buckets leave most batches
    in a few wide ones; fitted ones sit where the batches' longest rows fall."""
    lengths = np.clip(np.random.default_rng(1).lognormal(3.2, 0.4, 2000).astype(int), 3, 120).tolist()
    even = length_buckets(max(lengths))
    fitted = fitted_length_buckets(lengths, batch_size, "random")
    assert fitted[-1] == max(lengths) and fitted == sorted(set(fitted))
    assert all(b % 8 == 0 for b in fitted[:-1])
    even_tokens, even_shapes = _padded_and_shapes(lengths, even, batch_size, epochs=20)
    fitted_tokens, fitted_shapes = _padded_and_shapes(lengths, fitted, batch_size, epochs=20)
    assert len(fitted_shapes) <= len(even_shapes)
    assert fitted_tokens < {8: 0.95, 32: 0.98}[batch_size] * even_tokens, (even, fitted, fitted_tokens / even_tokens)


def test_fitted_buckets_known_cases():
    # In order, batches of one: their longest rows are 10, 10, 17, 17, 33; length_buckets(33) would use 3 buckets.
    assert fitted_length_buckets([10, 10, 17, 17, 33], 1, "sequential", multiple=1) == [10, 17, 33]
    assert fitted_length_buckets([10, 10, 17, 17, 33], 1, "sequential") == [16, 24, 33]
    assert fitted_length_buckets([20] * 50, 4, "random") == [20]  # one length: one bucket
    assert fitted_length_buckets([5, 9, 30, 31, 2, 4], 2, "sequential") == [8, 16, 31]  # batches: 9, 31, 4
    # group_by_length: a batch's rows have about the same length, so the buckets follow the rows' lengths.
    grouped = fitted_length_buckets([12] * 90 + [40] * 9 + [60], 10, "grouped")
    assert grouped == [16, 40, 60]
    with pytest.raises(ValueError, match="'random', 'sequential', 'grouped'"):
        fitted_length_buckets([3, 4], 2, "shuffled")
    with pytest.raises(ValueError, match="batch_size >= 1"):
        fitted_length_buckets([3, 4], 0)


def test_max_length_and_multiple_of_padding():
    fixed = NumpyDataCollator(pad_token_id=0, padding="max_length", max_length=16)
    assert fixed(rows([3]))["input_ids"].shape == (1, 16)
    assert NumpyDataCollator(pad_token_id=0, pad_to_multiple_of=8)(rows([3, 9]))["input_ids"].shape == (2, 16)
    with pytest.raises(ValueError, match="max_length=4"):
        NumpyDataCollator(pad_token_id=0, padding="max_length", max_length=4)(rows([5]))
    with pytest.raises(ValueError, match="needs `max_length`"):
        NumpyDataCollator(padding="max_length")


def test_tokenizer_gives_pad_id_and_left_padding(tokenizer):
    features = [dict(tokenizer(text)) for text in ["a fine film", "bad"]]
    batch = NumpyDataCollator(tokenizer=tokenizer)(features)
    assert batch["input_ids"][1, -1] == tokenizer.pad_token_id
    tokenizer.padding_side = "left"
    try:
        batch = NumpyDataCollator(tokenizer=tokenizer)(features)
    finally:
        tokenizer.padding_side = "right"
    assert batch["input_ids"][1, 0] == tokenizer.pad_token_id and batch["attention_mask"][1, 0] == 0


def test_clear_errors_for_bad_columns():
    with pytest.raises(TypeError, match=r"Column 'text' holds text.*remove_columns\(\['text'\]\)"):
        NumpyDataCollator(pad_token_id=0)([{"input_ids": [1], "text": "good"}, {"input_ids": [2], "text": "bad"}])
    with pytest.raises(ValueError, match="Column 'input_ids'.*no pad id.*pad_token_id="):
        NumpyDataCollator()(rows([2, 3]))
    with pytest.raises(ValueError, match="Column 'spans'.*not a known token field"):
        NumpyDataCollator(pad_token_id=0)([{"spans": [1, 2]}, {"spans": [1]}])
    with pytest.raises(TypeError, match="Column 'meta' holds dict"):
        NumpyDataCollator(pad_token_id=0)([{"input_ids": [1], "meta": {"a": 1}}])
    with pytest.raises(ValueError, match="labels.*rename your label column"):
        next(iter(MSDataLoader(rows([2, 2], label=False), batch_size=2, require_labels=True)))


def test_tutorial_generator_dataset_with_per_batch_map():
    hf_like = rows([2, 5, 3])
    loader = ms.dataset.GeneratorDataset(HF2MSDataset(hf_like), column_names="item", shuffle=False)
    loader = loader.batch(batch_size=2, per_batch_map=NumpyDataCollator(pad_token_id=PAD))
    batches = [b["item"] for b in loader.create_dict_iterator(num_epochs=1, output_numpy=True)]
    assert [b["input_ids"].shape for b in batches] == [(2, 5), (1, 3)]
    np.testing.assert_array_equal(batches[0]["input_ids"][0], [1, 2, PAD, PAD, PAD])
    np.testing.assert_array_equal(batches[0]["labels"], [0, 1])


def test_loader_yields_tensors_with_model_dtypes_and_length():
    loader = MSDataLoader(rows(range(1, 11)), batch_size=4, collate_fn=NumpyDataCollator(pad_token_id=0))
    batches = list(loader)
    assert len(loader) == len(batches) == 3
    assert isinstance(batches[0]["input_ids"], ms.Tensor)
    assert batches[0]["input_ids"].dtype == ms.int32 and batches[0]["labels"].dtype == ms.int32
    assert len(MSDataLoader(rows(range(1, 11)), batch_size=4, drop_last=True)) == 2


def _first_ids(loader):
    return [int(b["input_ids"].shape[1]) for b in loader]


def test_shuffle_is_seeded_and_changes_per_epoch():
    data = rows(range(1, 21))
    make = lambda: MSDataLoader(data, batch_size=5, shuffle=True, seed=3, output_numpy=True,  # noqa: E731
                                collate_fn=NumpyDataCollator(pad_token_id=0))
    first, again = make(), make()
    order0 = first.shard_indices()
    np.testing.assert_array_equal(order0, again.shard_indices())
    first.set_epoch(1)
    assert not np.array_equal(order0, first.shard_indices())
    assert sorted(first.shard_indices()) == list(range(20))


@pytest.mark.parametrize("num_rows", [12, 11])
def test_shards_are_disjoint_and_cover_the_data(num_rows):
    shards = [MSDataLoader(rows(range(1, num_rows + 1)), batch_size=2, shuffle=True, num_shards=3, shard_id=i)
              for i in range(3)]
    indices = [s.shard_indices() for s in shards]
    assert len({len(i) for i in indices}) == 1 and len({len(s) for s in shards}) == 1  # lockstep
    assert set(np.concatenate(indices)) == set(range(num_rows))
    if num_rows % 3 == 0:
        assert len(np.concatenate(indices)) == num_rows  # disjoint
    with pytest.raises(ValueError, match="shard_id"):
        MSDataLoader(rows([1]), batch_size=1, num_shards=2, shard_id=2)


def test_uneven_shards_repeat_no_row():
    """Evaluation shards: 11 rows over 3 shards are 4 + 4 + 3 rows, each row exactly once."""
    shards = [MSDataLoader(rows(range(1, 12)), batch_size=2, num_shards=3, shard_id=i, even_shards=False,
                           output_numpy=True, collate_fn=NumpyDataCollator(pad_token_id=0)) for i in range(3)]
    indices = [s.shard_indices() for s in shards]
    assert [len(i) for i in indices] == [4, 4, 3] and [len(s) for s in shards] == [2, 2, 2]
    assert sorted(np.concatenate(indices)) == list(range(11))
    np.testing.assert_array_equal(indices[2], [2, 5, 8])
    assert sum(len(b["labels"]) for s in shards for b in s) == 11


def test_skip_batches_resumes_mid_epoch():
    data = rows(range(1, 11))
    loader = MSDataLoader(data, batch_size=3, shuffle=True, seed=1, output_numpy=True,
                          collate_fn=NumpyDataCollator(pad_token_id=0))
    full = [b["input_ids"] for b in loader]
    loader.skip_batches(2)
    resumed = [b["input_ids"] for b in loader]
    assert len(resumed) == 2
    for a, b in zip(resumed, full[2:]):
        np.testing.assert_array_equal(a, b)
    assert len(list(loader)) == 4  # skipping applies to one iteration only


def test_group_by_length_needs_less_padding(reviews, tokenizer):
    data = reviews["train"].select(range(256)).map(lambda b: tokenizer(b["text"], truncation=True, max_length=64),
                                                   batched=True).remove_columns(["text"])
    collator = NumpyDataCollator(tokenizer=tokenizer)

    def padded_tokens(loader):
        return sum(int(np.prod(b["input_ids"].shape)) for b in loader)

    plain = MSDataLoader(data, batch_size=16, shuffle=True, collate_fn=collator, output_numpy=True)
    grouped = MSDataLoader(data, batch_size=16, group_by_length=True, collate_fn=collator, output_numpy=True)
    assert sorted(grouped.shard_indices()) == list(range(256))
    assert padded_tokens(grouped) < 0.8 * padded_tokens(plain)
    bucketed = MSDataLoader(data, batch_size=16, collate_fn=NumpyDataCollator(tokenizer, bucket_boundaries=[32, 64]))
    assert {tuple(b["input_ids"].shape) for b in bucketed} <= {(16, 32), (16, 64)}
