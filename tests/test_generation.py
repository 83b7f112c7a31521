"""generate(): settings, processors and graphs beyond the per-family parity checks of tests/model_parity.py.

The processors are compared with transformers' own on the same scores; the decoding loop with transformers'
`generate()` on a tiny Llama (end-of-sequence lists, several return sequences, the generation config file).
"""

import json

import mindspore as ms
import numpy as np
import pytest
import torch
import transformers
from transformers import GenerationConfig, LlamaConfig

import mindone_ft
from mindone_ft.generation import logits_process
from mindone_ft.generation.utils import CACHE_BUCKET, PROMPT_BUCKET

VOCAB = 61


def tiny_config(**overrides) -> LlamaConfig:
    values = dict(vocab_size=VOCAB, hidden_size=32, intermediate_size=40, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, max_position_embeddings=128, pad_token_id=0, bos_token_id=1, eos_token_id=2)
    values.update(overrides)
    return LlamaConfig(**values)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """(torch model, mindone_ft model, folder) of a tiny Llama with peaked logits (weights scaled up), so that
    greedy choices are not decided by float32 noise."""
    config = tiny_config()
    config._attn_implementation = "eager"
    torch.manual_seed(0)
    torch_model = transformers.LlamaForCausalLM(config).eval()
    with torch.no_grad():
        for param in torch_model.parameters():
            param.mul_(3.0).add_(torch.randn_like(param) * 0.02)
    folder = tmp_path_factory.mktemp("tiny_llama")
    torch_model.save_pretrained(folder)
    return torch_model, mindone_ft.LlamaForCausalLM.from_pretrained(folder), folder


def prompts(batch: int = 3, length: int = 7, seed: int = 0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(3, VOCAB, (batch, length))
    mask = np.ones_like(ids)
    if batch > 1:
        mask[1, :3] = 0
    if batch > 2:
        mask[2, :1] = 0
    ids[mask == 0] = 0
    return ids, mask


# --- processors against transformers' -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ours, theirs",
    [
        (lambda: logits_process.temperature(0.7), lambda: transformers.TemperatureLogitsWarper(0.7)),
        (lambda: logits_process.top_k(5), lambda: transformers.TopKLogitsWarper(5)),
        (lambda: logits_process.top_p(0.8), lambda: transformers.TopPLogitsWarper(0.8)),
        (lambda: logits_process.min_p(0.2), lambda: transformers.MinPLogitsWarper(0.2)),
        (lambda: logits_process.repetition_penalty(1.3), lambda: transformers.RepetitionPenaltyLogitsProcessor(1.3)),
        (lambda: logits_process.repetition_penalty(1.3, np.array([0, 2, 1])),
         lambda: transformers.RepetitionPenaltyLogitsProcessor(1.3, prompt_ignore_length=torch.tensor([0, 2, 1]))),
        (lambda: logits_process.suppress_eos_until(9, [2, 4]),
         lambda: transformers.MinLengthLogitsProcessor(9, [2, 4])),
        (lambda: logits_process.suppress_eos_until(3, [2], prompt_length=4),
         lambda: transformers.MinNewTokensLengthLogitsProcessor(4, 3, [2])),
    ],
    ids=["temperature", "top_k", "top_p", "min_p", "repetition", "repetition_skipping_padding", "min_length",
         "min_new_tokens"],
)
def test_processors_match_transformers(ours, theirs):
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(3, VOCAB)).astype(np.float32) * 3
    input_ids = rng.integers(0, VOCAB, (3, 6))
    expected = theirs()(torch.from_numpy(input_ids), torch.from_numpy(scores.copy())).numpy()
    got = ours()(input_ids, scores)
    assert np.array_equal(np.isinf(got), np.isinf(expected))
    finite = np.isfinite(expected)
    np.testing.assert_allclose(got[finite], expected[finite], rtol=1e-6, atol=1e-6)


def test_sampling_follows_the_probabilities():
    scores = np.array([[np.log(0.1), -np.inf, np.log(0.6), np.log(0.3)]])
    draws = [logits_process.sample(scores, np.random.default_rng(i))[0] for i in range(2000)]
    frequencies = np.bincount(draws, minlength=4) / len(draws)
    assert frequencies[1] == 0.0
    np.testing.assert_allclose(frequencies, [0.1, 0.0, 0.6, 0.3], atol=0.03)


# --- the decoding loop ------------------------------------------------------------------------------------------


def test_eos_list_and_padding_of_finished_rows(models, pynative):
    torch_model, model, _ = models
    ids, mask = prompts()
    # end on the tokens greedy decoding produces (taken from a first run), so rows finish at different steps
    first = model.generate(ids, attention_mask=mask, max_new_tokens=12, do_sample=False)
    eos = [int(first[0, 9]), int(first[2, 11])]
    kwargs = dict(max_new_tokens=12, do_sample=False, eos_token_id=eos, pad_token_id=0)
    with torch.no_grad():
        expected = torch_model.generate(torch.tensor(ids), attention_mask=torch.tensor(mask), **kwargs).numpy()
    got = model.generate(ids, attention_mask=mask, **kwargs)
    assert (got == expected).all()
    finished = 0
    for row in got[:, 7:]:
        ends = np.flatnonzero(np.isin(row, eos))
        if ends.size and ends[0] < len(row) - 1:
            finished += 1
            assert (row[ends[0] + 1:] == 0).all()  # pad_token_id after the end
    assert finished >= 1 and got.shape[1] == 7 + 12


def test_num_return_sequences_and_sampling_seed(models, pynative):
    _, model, _ = models
    ids, mask = prompts(batch=2)
    kwargs = dict(max_new_tokens=6, do_sample=True, top_k=0, temperature=1.5, num_return_sequences=3)
    first = model.generate(ids, attention_mask=mask, seed=7, **kwargs)
    again = model.generate(ids, attention_mask=mask, seed=7, **kwargs)
    other = model.generate(ids, attention_mask=mask, seed=8, **kwargs)
    assert first.shape == (6, 13) and (first == again).all() and not (first == other).all()
    assert (first[:3, :7] == ids[0]).all() and (first[3:, :7] == ids[1]).all()
    mindone_ft.set_seed(3)
    seeded = model.generate(ids, attention_mask=mask, **kwargs)
    mindone_ft.set_seed(3)
    assert (model.generate(ids, attention_mask=mask, **kwargs) == seeded).all()


def test_generation_config_file_and_defaults(models, tmp_path, pynative):
    torch_model, model, folder = models
    ids, mask = prompts()
    # transformers' global default: 20 tokens in all
    assert model.generate(ids, attention_mask=mask).shape == (3, 20)
    saved = tmp_path / "saved"
    model.generation_config = GenerationConfig(max_new_tokens=4, eos_token_id=2, pad_token_id=0, do_sample=False)
    model.save_pretrained(saved)
    assert json.loads((saved / "generation_config.json").read_text())["max_new_tokens"] == 4
    reloaded = mindone_ft.AutoModelForCausalLM.from_pretrained(saved)
    assert reloaded.generation_config.max_new_tokens == 4
    assert reloaded.generate(ids, attention_mask=mask).shape == (3, 11)
    assert reloaded.generate(ids, attention_mask=mask, max_new_tokens=2).shape == (3, 9)  # kwargs win
    # transformers reads our file too
    assert transformers.GenerationConfig.from_pretrained(saved).max_new_tokens == 4
    model.generation_config = GenerationConfig.from_model_config(model.config)


def test_return_dict_scores_and_streamer(models, pynative):
    _, model, _ = models
    ids, mask = prompts(batch=1)
    received = []

    class Streamer:
        def put(self, value):
            received.append(np.asarray(value).copy())

        def end(self):
            received.append("end")

    out = model.generate(ids, attention_mask=mask, max_new_tokens=5, min_new_tokens=5, do_sample=False,
                         return_dict_in_generate=True, output_scores=True, output_logits=True, streamer=Streamer())
    assert out.sequences.shape == (1, 12) and len(out.scores) == len(out.logits) == 5
    assert [int(np.argmax(s)) for s in out.scores] == out.sequences[0, 7:].tolist()
    assert (received[0] == ids).all() and received[-1] == "end" and len(received) == 7


def test_tokenizer_decodes_the_output(models, pynative):
    from transformers import AutoTokenizer

    from mindone_ft.utils import default_model_path

    tokenizer = AutoTokenizer.from_pretrained(default_model_path())
    _, model, _ = models
    ids, mask = prompts()
    texts = tokenizer.batch_decode(model.generate(ids, attention_mask=mask, max_new_tokens=3))
    assert len(texts) == 3 and all(isinstance(t, str) and t for t in texts)
    # MindSpore prompts give a MindSpore tensor back
    out = model.generate(ms.Tensor(ids), attention_mask=ms.Tensor(mask), max_new_tokens=3)
    assert isinstance(out, ms.Tensor) and out.dtype == ms.int64 and out.shape == (3, 10)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_beams": 2}, "beam search"),
        ({"no_repeat_ngram_size": 2}, "repetition_penalty"),
        ({"stop_strings": ["x"]}, "eos_token_id"),
        ({"inputs_embeds": np.zeros((1, 2, 32), np.float32)}, "input_ids"),
        ({"foo": 1}, "not used"),
    ],
)
def test_unsupported_settings_are_named(models, kwargs, message):
    _, model, _ = models
    ids, mask = prompts(batch=1)
    with pytest.raises((NotImplementedError, ValueError), match=message):
        model.generate(ids, attention_mask=mask, max_new_tokens=2, **kwargs)


def test_right_padding_is_warned_about(models, caplog, pynative):
    _, model, _ = models
    ids, mask = prompts(batch=2)
    with caplog.at_level("WARNING"):
        model.generate(np.ascontiguousarray(ids[:, ::-1]), attention_mask=np.ascontiguousarray(mask[:, ::-1]),
                       max_new_tokens=1)
    assert "right-padding was detected" in caplog.text


def test_graph_mode_compiles_two_graphs_per_bucket(models, graph_mode):
    """Prefill and decoding step: two graphs for a generate() call, none for a later call whose prompt length and
    total length fall in the same buckets, however many tokens it generates."""
    _, model, folder = models
    model = mindone_ft.LlamaForCausalLM.from_pretrained(folder)  # a fresh graph cache
    ids, mask = prompts()
    first = model.generate(ids, attention_mask=mask, max_new_tokens=20, min_new_tokens=20)
    assert len(model.compile_cache) == 2
    shorter = model.generate(ids[:, 2:], attention_mask=mask[:, 2:], max_new_tokens=22, min_new_tokens=22)
    assert len(model.compile_cache) == 2
    assert shorter.shape == (3, 27) and first.shape == (3, 27)
    assert PROMPT_BUCKET >= ids.shape[1] and CACHE_BUCKET > 1  # what the two calls share


def test_graph_mode_decoding_shortcut_never_reuses_another_shape(models, graph_mode, monkeypatch):
    """Decoding steps skip MindSpore's per-call compile check (`compat.repeated_graph_calls`): a later call with
    other buckets or batch must still get its own graph and transformers' tokens, and the model's phase is restored
    after every call, also one that fails midway."""
    torch_model, model, folder = models
    model = mindone_ft.LlamaForCausalLM.from_pretrained(folder)
    calls = [(prompts(3, 7), 6), (prompts(2, 7 + PROMPT_BUCKET, seed=1), 4), (prompts(1, 5, seed=2), CACHE_BUCKET + 3)]
    for (ids, mask), new_tokens in calls:
        ours = model.generate(ids, attention_mask=mask, max_new_tokens=new_tokens, do_sample=False)
        theirs = torch_model.generate(torch.tensor(ids), attention_mask=torch.tensor(mask), max_new_tokens=new_tokens,
                                      do_sample=False, pad_token_id=0)
        np.testing.assert_array_equal(ours.asnumpy() if hasattr(ours, "asnumpy") else ours, theirs.numpy())
        assert model.phase == "predict"

    def fail(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(logits_process, "apply_processors", fail)
    with pytest.raises(KeyboardInterrupt):
        model.generate(*calls[0][0][:1], attention_mask=calls[0][0][1], max_new_tokens=3)
    assert model.phase == "predict" and "increment" not in model.phase_cache
