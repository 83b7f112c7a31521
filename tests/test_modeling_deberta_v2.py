"""DeBERTa-v2 / v3 against transformers: the parity harness on a v3-like and a v2-like tiny config, the relative
position helpers against transformers' functions, and DeBERTa's own classification loss rule."""

import numpy as np
import pytest
import torch
import transformers
from transformers.models.deberta_v2 import modeling_deberta_v2 as hf_deberta_v2

import mindone_ft  # noqa: F401  (registers the families)
from mindone_ft.models.deberta_v2 import modeling_deberta_v2 as ms_deberta_v2
from model_parity import ModelFamily, ModelParityTests, to_ms, to_torch


def tiny_v3_config(**overrides) -> transformers.DebertaV2Config:
    """DeBERTa-v3 style: relative attention only (no absolute positions), log buckets shorter than the sequence,
    shared attention keys, both position score types, normalized relative embeddings, no token types, and an
    embedding size different from the hidden size."""
    values = dict(
        vocab_size=99,
        hidden_size=32,
        embedding_size=24,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        max_position_embeddings=16,
        type_vocab_size=0,
        relative_attention=True,
        position_buckets=6,  # distances beyond 3 share log buckets; the harness's rows are 9 tokens long
        max_relative_positions=-1,
        share_att_key=True,
        pos_att_type=["p2c", "c2p"],
        norm_rel_ebd="layer_norm",
        position_biased_input=False,
        hidden_act="gelu",
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
        pooler_dropout=0.1,
    )
    values.update(overrides)
    return transformers.DebertaV2Config(**values)


def tiny_v2_config(**overrides) -> transformers.DebertaV2Config:
    """DeBERTa-v2 style: separate position projections, absolute positions too, no buckets but a relative span
    (4) shorter than the sequence, two segments, the grouped convolution after the first layer, unnormalized
    relative embeddings, and the original (non-legacy) MLM head."""
    values = dict(
        vocab_size=99,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        max_position_embeddings=16,
        type_vocab_size=2,
        relative_attention=True,
        position_buckets=-1,
        max_relative_positions=4,
        share_att_key=False,
        pos_att_type="c2p|p2c",
        norm_rel_ebd="none",
        position_biased_input=True,
        conv_kernel_size=3,
        conv_groups=2,
        conv_act="gelu",
        pooler_hidden_act="tanh",
        legacy=False,
    )
    values.update(overrides)
    return transformers.DebertaV2Config(**values)


class TestDebertaV2Parity(ModelParityTests):
    family = ModelFamily(
        "deberta-v2",
        tiny_v3_config,
        heads=("DebertaV2Model", "DebertaV2ForSequenceClassification", "DebertaV2ForTokenClassification",
               "DebertaV2ForQuestionAnswering", "DebertaV2ForMaskedLM", "DebertaV2ForMultipleChoice"),
    )


class TestDebertaV2ConvNonLegacyParity(ModelParityTests):
    checks_training = False  # the family's main config checks them
    family = ModelFamily(
        "deberta-v2",
        tiny_v2_config,
        heads=("DebertaV2ForMaskedLM",),  # its outputs include every hidden state and attention map
    )


# --------------------------------------------------------------------------------------------------------------
# Relative positions
# --------------------------------------------------------------------------------------------------------------

# The tiny configs' buckets, and those of real checkpoints (DeBERTa-v3 and v2-xlarge: 256 buckets over 512).
RELATIVE_CASES = [(4, 16), (6, 16), (8, 24), (64, 100), (256, 512)]


@pytest.mark.parametrize("bucket_size,max_position", RELATIVE_CASES + [(128, 512), (256, 1024)])
def test_make_log_bucket_position_matches_transformers(bucket_size, max_position):
    distances = np.arange(-3 * max_position, 3 * max_position + 1)
    expected = hf_deberta_v2.make_log_bucket_position(torch.from_numpy(distances), bucket_size, max_position)
    got = ms_deberta_v2.make_log_bucket_position(distances, bucket_size, max_position)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, expected.numpy())


@pytest.mark.parametrize("bucket_size,max_position", RELATIVE_CASES + [(-1, 4), (-1, 512)])
def test_relative_positions_match_transformers(bucket_size, max_position):
    """`build_relative_position`, and the per-distance index tables the model gathers from, against
    transformers' clamped indices, for sequences longer than the tables."""
    att_span = bucket_size if bucket_size > 0 else max_position
    max_distance, c2p_table, p2c_table = ms_deberta_v2.relative_position_index_tables(
        att_span, bucket_size, max_position
    )
    for seq in sorted({3, 9, 2 * max_distance + 7}):
        layer = torch.zeros(1, seq, 1)
        expected = hf_deberta_v2.build_relative_position(layer, layer, bucket_size, max_position).numpy()
        got = ms_deberta_v2.build_relative_position(seq, seq, bucket_size, max_position)
        np.testing.assert_array_equal(got, expected)
        distances = np.clip(np.arange(seq)[:, None] - np.arange(seq)[None, :], -max_distance, max_distance)
        np.testing.assert_array_equal(
            c2p_table[distances + max_distance], np.clip(expected[0] + att_span, 0, 2 * att_span - 1)
        )
        np.testing.assert_array_equal(
            p2c_table[distances + max_distance], np.clip(-expected[0] + att_span, 0, 2 * att_span - 1)
        )


# --------------------------------------------------------------------------------------------------------------
# DeBERTa's classification loss without a problem type
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("labels", [np.array([2, -1, 0]), np.array([-1, -1, -1])], ids=["some_unlabelled", "none"])
def test_negative_class_labels_are_left_out_like_transformers(labels, pynative, tmp_path):
    config = tiny_v3_config(num_labels=3, num_hidden_layers=1)
    torch.manual_seed(0)
    torch_model = transformers.DebertaV2ForSequenceClassification(config).eval()
    torch_model.save_pretrained(tmp_path)
    ms_model = mindone_ft.DebertaV2ForSequenceClassification.from_pretrained(tmp_path)
    inputs = {"input_ids": np.array([[5, 6, 7, 8], [9, 10, 11, 0], [12, 13, 0, 0]]),
              "attention_mask": np.array([[1, 1, 1, 1], [1, 1, 1, 0], [1, 1, 0, 0]])}
    with torch.no_grad():
        expected = torch_model(**to_torch(inputs), labels=torch.from_numpy(labels)).loss.item()
    got = ms_model(**to_ms(inputs), labels=to_ms({"labels": labels})["labels"]).loss.asnumpy()
    assert abs(float(got) - expected) < 1e-5
    assert ms_model.config.problem_type is None  # transformers' DeBERTa does not store an inferred problem type


def test_even_convolution_kernel_is_rejected():
    with pytest.raises(ValueError, match="conv_kernel_size must be odd"):
        mindone_ft.DebertaV2Model(tiny_v2_config(conv_kernel_size=2))


def test_training_mode_uses_dropout_and_trains(graph_mode):
    """Every dropout of the family (embeddings, relative embeddings, attention, convolution, pooler) runs in a
    graph-compiled train step; eval mode is deterministic."""
    import mindspore as ms

    from model_parity import LossCell

    ms.set_seed(0)
    config = tiny_v2_config(num_labels=3, hidden_dropout_prob=0.2, attention_probs_dropout_prob=0.2,
                            pooler_dropout=0.2)
    model = mindone_ft.DebertaV2ForSequenceClassification(config)
    inputs = to_ms({"input_ids": np.array([[5, 6, 7, 8], [9, 10, 11, 0]]),
                    "attention_mask": np.array([[1, 1, 1, 1], [1, 1, 1, 0]])})
    labels = ms.Tensor(np.array([0, 2]))
    model.set_train(False)
    first, second = model(**inputs).logits.asnumpy(), model(**inputs).logits.asnumpy()
    assert np.array_equal(first, second)
    model.set_train(True)
    grad_fn = ms.value_and_grad(LossCell(model), None, model.trainable_params())
    loss, grads = grad_fn(inputs["input_ids"], inputs["attention_mask"], None, None, None, labels)
    loss_again, _ = grad_fn(inputs["input_ids"], inputs["attention_mask"], None, None, None, labels)
    assert np.isfinite(loss.asnumpy()) and loss.asnumpy() != loss_again.asnumpy()  # fresh masks each step
    assert all(np.isfinite(g.asnumpy()).all() for g in grads)


def test_inputs_embeds_and_default_mask(pynative):
    """`inputs_embeds` (in `embedding_size`) gives what `input_ids` gives; no mask means every token is real."""
    model = mindone_ft.DebertaV2Model(tiny_v3_config())
    model.set_train(False)
    ids = to_ms({"ids": np.array([[5, 6, 7, 8], [9, 10, 11, 12]])})["ids"]
    ones = to_ms({"mask": np.ones((2, 4), np.int64)})["mask"]
    from_ids = model(ids).last_hidden_state.asnumpy()
    from_embeds = model(inputs_embeds=model.get_input_embeddings()(ids)).last_hidden_state.asnumpy()
    with_mask = model(ids, ones).last_hidden_state.asnumpy()
    assert np.allclose(from_ids, from_embeds, atol=1e-6) and np.array_equal(from_ids, with_mask)
