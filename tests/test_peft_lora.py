"""LoRA adapters against the real Hugging Face PEFT (0.21) on PyTorch, both ways.

Every adapter is made with `init_lora_weights=False` (B random, not zero) on base models whose parameters are all
perturbed, so that an adapter loaded into the wrong place, scaled wrongly, or not applied at all changes the logits
by far more than the 1e-5 tolerance (each test also checks that the adapter moves the logits by > 1e-3).
"""

import json
import os

import mindspore as ms
import numpy as np
import peft
import pytest
import torch
import transformers
from safetensors import safe_open
from safetensors.numpy import load_file

import mindone_ft
from mindone_ft.peft import LoraConfig, PeftModel, TaskType, get_peft_model

ATOL = 1e-5
GRAD_RTOL = 1e-4


def tiny_bert_config(**overrides):
    values = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
                  num_labels=3, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, max_position_embeddings=64)
    values.update(overrides)
    return transformers.BertConfig(**values)


def tiny_llama_config(**overrides):
    values = dict(vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, pad_token_id=0, max_position_embeddings=64)
    values.update(overrides)
    return transformers.LlamaConfig(**values)


def perturbed(torch_model, seed: int = 0):
    """Every parameter moved off its initial value (zero biases and unit norms too)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in torch_model.parameters():
            param.add_(torch.randn(param.shape, generator=generator) * 0.05)
    return torch_model.eval()


def saved_perturbed(tmp_path_factory, name: str, model_class, config) -> str:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp(name)
    perturbed(model_class(config)).save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory):
    """A saved tiny `BertForSequenceClassification` (PyTorch), perturbed."""
    return saved_perturbed(tmp_path_factory, "bert", transformers.BertForSequenceClassification, tiny_bert_config())


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory):
    """A saved tiny `LlamaForCausalLM` (PyTorch), perturbed, untied embeddings."""
    return saved_perturbed(tmp_path_factory, "llama", transformers.LlamaForCausalLM, tiny_llama_config())


def torch_bert(bert_dir):
    return transformers.BertForSequenceClassification.from_pretrained(bert_dir).eval()


def torch_llama(llama_dir):
    return transformers.LlamaForCausalLM.from_pretrained(llama_dir).eval()


def inputs(vocab_size: int = 99, seed: int = 0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, vocab_size, (3, 9))
    mask = np.ones_like(ids)
    mask[1, 4:] = 0
    ids[mask == 0] = 0
    return {"input_ids": ids, "attention_mask": mask}


def torch_logits(model, batch) -> np.ndarray:
    with torch.no_grad():
        return model(**{k: torch.from_numpy(v) for k, v in batch.items()}).logits.numpy()


def ms_logits(model, batch) -> np.ndarray:
    return model(**batch).logits.asnumpy()


def peft_adapter(torch_model, path, adapter_name: str = "default", **config):
    """A PEFT adapter with random A and B (and perturbed `modules_to_save` copies) on `torch_model`, saved to
    `path`; returns the PEFT model."""
    torch.manual_seed(1)
    model = peft.get_peft_model(torch_model, peft.LoraConfig(init_lora_weights=False, **config), adapter_name)
    with torch.no_grad():  # a trained copy of modules_to_save differs from the original module
        for name, param in model.named_parameters():
            if f".modules_to_save.{adapter_name}." in name:
                param.add_(torch.randn_like(param) * 0.1)
    model.save_pretrained(path)
    return model.eval()


def assert_close(got, expected, base=None):
    np.testing.assert_allclose(got, expected, rtol=0, atol=ATOL)
    if base is not None:  # the adapter really changes the outputs, far beyond the tolerance
        assert np.abs(expected - base).max() > 1e-3


# ------------------------------------------------------------------------------------------------ config & files
def test_config_has_peft_fields_and_defaults():
    ours = LoraConfig().to_dict()
    theirs = peft.LoraConfig().to_dict()
    assert set(ours) == set(theirs)
    differing = {k: (ours[k], theirs[k]) for k in ours if ours[k] != theirs[k]}
    assert differing == {}, differing
    assert LoraConfig(target_modules=["query", "value"]).target_modules == {"query", "value"}


@pytest.mark.parametrize("task_type", [pytest.param("SEQ_CLS", marks=pytest.mark.slow), None])  # SEQ_CLS: ~2 min
def test_adapter_files_are_peft_files(bert_dir, tmp_path, task_type):
    """Same adapter_config.json and safetensors keys/metadata/shapes as PEFT for the same config."""
    config = dict(r=4, lora_alpha=8, target_modules=["query", "value"], use_rslora=True, task_type=task_type,
                  rank_pattern={"value": 2}, alpha_pattern={"query": 3}, layers_to_transform=[1])
    peft_adapter(torch_bert(bert_dir), tmp_path / "theirs", **config)
    ours = get_peft_model(mindone_ft.BertForSequenceClassification.from_pretrained(bert_dir),
                          LoraConfig(init_lora_weights=False, **config))
    ours.save_pretrained(tmp_path / "ours")
    assert sorted(os.listdir(tmp_path / "ours")) == sorted(os.listdir(tmp_path / "theirs"))
    theirs_json = json.load(open(tmp_path / "theirs" / "adapter_config.json"))
    ours_json = json.load(open(tmp_path / "ours" / "adapter_config.json"))
    assert ours_json["base_model_name_or_path"] == bert_dir
    for key in ("target_modules", "modules_to_save"):  # PEFT writes sets in set order, we sort them
        assert sorted(ours_json.pop(key) or []) == sorted(theirs_json.pop(key) or [])
    assert ours_json == theirs_json  # incl. auto_mapping naming the transformers class when there is no task type
    with safe_open(str(tmp_path / "ours" / "adapter_model.safetensors"), "np") as f:
        assert f.metadata() == {"format": "pt"}
    ours_w, theirs_w = (load_file(str(tmp_path / d / "adapter_model.safetensors")) for d in ("ours", "theirs"))
    assert {k: v.shape for k, v in ours_w.items()} == {k: v.shape for k, v in theirs_w.items()}
    assert "base_model.model.bert.encoder.layer.1.attention.self.value.lora_A.weight" in ours_w
    assert not any("layer.0." in k for k in ours_w)  # layers_to_transform=[1]


def test_config_rejects_what_is_not_implemented(tmp_path):
    with pytest.raises(NotImplementedError, match="DoRA"):
        LoraConfig(use_dora=True)
    with pytest.raises(NotImplementedError, match="init_lora_weights='pissa'"):
        LoraConfig(init_lora_weights="pissa")
    with pytest.raises(NotImplementedError, match="encoder-decoder"):
        LoraConfig(task_type=TaskType.SEQ_2_SEQ_LM)
    with pytest.raises(NotImplementedError, match="only LoRA"):
        LoraConfig(peft_type="IA3")
    (tmp_path / "adapter_config.json").write_text(json.dumps({"peft_type": "IA3", "target_modules": ["query"]}))
    with pytest.raises(NotImplementedError, match="'IA3' is not implemented"):
        PeftModel.from_pretrained(mindone_ft.BertForSequenceClassification(tiny_bert_config()), str(tmp_path))
    with pytest.raises(NotImplementedError, match="mixed"):
        get_peft_model(mindone_ft.BertForSequenceClassification(tiny_bert_config()), LoraConfig(), mixed=True)
    model = mindone_ft.BertForSequenceClassification(tiny_bert_config())
    with pytest.raises(ValueError, match="not found in the base model"):
        get_peft_model(model, LoraConfig(target_modules=["no_such_layer"]))
    with pytest.raises(ValueError, match="LayerNorm.*not supported"):
        get_peft_model(model, LoraConfig(target_modules=["LayerNorm"]))


# ------------------------------------------------------------------------------------------------ PEFT -> ours
def test_peft_adapter_gives_the_same_logits(bert_dir, tmp_path, mode):
    """A PEFT adapter (SEQ_CLS: LoRA on query/value + the classifier as modules_to_save) loaded here."""
    theirs = peft_adapter(torch_bert(bert_dir), tmp_path, task_type="SEQ_CLS", r=4, lora_alpha=8,
                          target_modules=["query", "value"])
    batch = inputs()
    expected = torch_logits(theirs, batch)
    with theirs.disable_adapter():
        expected_base = torch_logits(theirs, batch)
    model = mindone_ft.BertForSequenceClassification.from_pretrained(bert_dir)
    assert_close(ms_logits(model, batch), expected_base)  # compiled before the adapter: must not stay stale
    ours = PeftModel.from_pretrained(model, str(tmp_path))
    assert type(ours).__name__ == "PeftModelForSequenceClassification"
    assert_close(ms_logits(ours, batch), expected, expected_base)
    with ours.disable_adapter():
        assert_close(ms_logits(ours, batch), expected_base)
    assert_close(ms_logits(ours, batch), expected)
    assert ours.get_nb_trainable_parameters()[0] == 0  # loaded for inference: frozen


def test_llama_adapter_all_linear_embedding_patterns_rslora(llama_dir, tmp_path):
    """Llama CAUSAL_LM: "all-linear" (lm_head excluded, as PEFT), LoRA on embed_tokens, rank/alpha patterns and
    rsLoRA; then `generate` agrees with PEFT's."""
    config = dict(task_type="CAUSAL_LM", r=4, lora_alpha=8, use_rslora=True, rank_pattern={"down_proj": 2},
                  alpha_pattern={"v_proj": 3, "embed_tokens": 5})
    theirs = peft_adapter(torch_llama(llama_dir), tmp_path / "all", target_modules="all-linear", **config)
    batch = {"input_ids": inputs(64)["input_ids"]}
    ours = PeftModel.from_pretrained(mindone_ft.LlamaForCausalLM.from_pretrained(llama_dir), str(tmp_path / "all"))
    targets = ours.peft_config["default"].target_modules
    assert targets == theirs.peft_config["default"].target_modules and "lm_head" not in targets
    with theirs.disable_adapter():
        base = torch_logits(theirs, batch)
    assert_close(ms_logits(ours, batch), torch_logits(theirs, batch), base)

    theirs = peft_adapter(torch_llama(llama_dir), tmp_path / "emb", target_modules=["embed_tokens", "q_proj"],
                          **config)
    ours = PeftModel.from_pretrained(mindone_ft.LlamaForCausalLM.from_pretrained(llama_dir), str(tmp_path / "emb"))
    assert_close(ms_logits(ours, batch), torch_logits(theirs, batch), base)
    ours.save_pretrained(tmp_path / "emb_ours")  # embedding layers saved as PEFT does (save_embedding_layers="auto")
    ours_w = load_file(str(tmp_path / "emb_ours" / "adapter_model.safetensors"))
    theirs_w = load_file(str(tmp_path / "emb" / "adapter_model.safetensors"))
    assert "base_model.model.model.embed_tokens.base_layer.weight" in ours_w and ours_w.keys() == theirs_w.keys()
    for key in theirs_w:
        np.testing.assert_array_equal(ours_w[key], theirs_w[key])
    prompt = batch["input_ids"][:1]
    expected = theirs.generate(input_ids=torch.from_numpy(prompt), max_new_tokens=5, do_sample=False).numpy()
    generated = ours.generate(ms.Tensor(prompt.astype(np.int32)), max_new_tokens=5, do_sample=False)
    np.testing.assert_array_equal(np.asarray(getattr(generated, "asnumpy", lambda: generated)()), expected)


def test_named_adapters_load_switch_and_save_like_peft(bert_dir, tmp_path):
    theirs = peft_adapter(torch_bert(bert_dir), tmp_path / "peft", task_type="SEQ_CLS", r=4,
                          target_modules=["query", "value"])
    theirs.add_adapter("other", peft.LoraConfig(task_type="SEQ_CLS", r=2, lora_alpha=6, target_modules=["key"],
                                                init_lora_weights=False))
    theirs.save_pretrained(tmp_path / "peft")  # "other" goes to peft/other/
    assert os.path.isfile(tmp_path / "peft" / "other" / "adapter_model.safetensors")
    batch = inputs()
    expected = {}
    for name in ("default", "other"):
        theirs.set_adapter(name)
        expected[name] = torch_logits(theirs, batch)

    ours = PeftModel.from_pretrained(mindone_ft.BertForSequenceClassification.from_pretrained(bert_dir),
                                     str(tmp_path / "peft"))
    ours.load_adapter(str(tmp_path / "peft" / "other"), "other")
    assert ours.active_adapter == "default"
    assert_close(ms_logits(ours, batch), expected["default"])
    ours.set_adapter("other")
    assert ours.active_adapter == "other"
    assert_close(ms_logits(ours, batch), expected["other"], expected["default"])
    ours.save_pretrained(tmp_path / "ours")
    for name, folder in (("default", ""), ("other", "other")):
        ours_w = load_file(str(tmp_path / "ours" / folder / "adapter_model.safetensors"))
        theirs_w = load_file(str(tmp_path / "peft" / folder / "adapter_model.safetensors"))
        assert ours_w.keys() == theirs_w.keys(), name
        for key in ours_w:
            np.testing.assert_array_equal(ours_w[key], theirs_w[key])
    ours.delete_adapter("other")
    assert list(ours.peft_config) == ["default"] and ours.active_adapter == "default"
    assert_close(ms_logits(ours, batch), expected["default"])


def test_adapter_from_the_hub_cache_and_push_to_hub(bert_dir, tmp_path, monkeypatch):
    """A Hub id resolves through huggingface_hub's cache (offline here: a cache laid out as the Hub's)."""
    peft_adapter(torch_bert(bert_dir), tmp_path / "files", target_modules=["query"], task_type="SEQ_CLS")
    snapshot = tmp_path / "cache" / "models--someone--tiny-lora" / "snapshots" / ("a" * 40)
    snapshot.mkdir(parents=True)
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        os.replace(tmp_path / "files" / name, snapshot / name)
    (snapshot.parent.parent / "refs").mkdir()
    (snapshot.parent.parent / "refs" / "main").write_text("a" * 40)
    model = mindone_ft.BertForSequenceClassification.from_pretrained(bert_dir)
    ours = PeftModel.from_pretrained(model, "someone/tiny-lora", cache_dir=str(tmp_path / "cache"),
                                     local_files_only=True)
    assert ours.peft_config["default"].target_modules == {"query"}
    uploaded = {}
    monkeypatch.setattr(mindone_ft.modeling_utils, "upload_folder_to_hub",
                        lambda folder, repo_id, **kwargs: uploaded.update({repo_id: sorted(os.listdir(folder))})
                        or (repo_id, None))
    ours.push_to_hub("someone/pushed")  # the adapter, not the base model
    assert uploaded == {"someone/pushed": ["README.md", "adapter_config.json", "adapter_model.safetensors"]}
    with pytest.raises(ValueError, match="Can't find 'adapter_config.json' at 'someone/absent'.*Hub"):
        PeftModel.from_pretrained(mindone_ft.BertForSequenceClassification.from_pretrained(bert_dir),
                                  "someone/absent", cache_dir=str(tmp_path / "cache"), local_files_only=True)


FAMILY_MODULES = ("albert", "bert", "deberta_v2", "distilbert", "electra", "gemma3", "gpt2", "llama", "mistral",
                  "modernbert", "mpnet", "qwen2", "qwen3", "roberta", "xlm_roberta")


def sequence_classification_family(module_name: str):
    """The `ModelFamily` (tests/model_parity.py) of `tests/test_modeling_<module_name>.py` with a sequence
    classification head, and that head."""
    import importlib

    from model_parity import ModelFamily

    module = importlib.import_module(f"test_modeling_{module_name}")
    candidates = [value for value in vars(module).values() if isinstance(value, ModelFamily)]
    candidates += [value.family for value in vars(module).values() if isinstance(getattr(value, "family", None),
                                                                                   ModelFamily)]
    for family in candidates:
        heads = [h for h in family.heads if h.endswith("ForSequenceClassification")]
        if heads:
            return family, heads[0]
    pytest.skip(f"{module_name}: no sequence classification head")


@pytest.mark.parametrize("module_name", FAMILY_MODULES)
def test_every_family_takes_a_peft_all_linear_adapter(module_name, tmp_path, pynative):
    """Each model family's `...ForSequenceClassification` with PEFT's "all-linear" SEQ_CLS adapter (LoRA on every
    Linear / Conv1D, the head as modules_to_save): the same logits here, also once merged (PYNATIVE: no compile per
    family)."""
    from model_parity import make_inputs, perturbed_torch_model

    family, head = sequence_classification_family(module_name)
    config = family.config(num_labels=3)
    config._attn_implementation = "eager"
    base_dir = tmp_path / "base"
    perturbed_torch_model(family, head, config).save_pretrained(base_dir)
    # DistilBERT's `pre_classifier` ends with "classifier" (a modules_to_save name): PEFT and we refuse LoRA on it.
    exclude = ["pre_classifier"] if module_name == "distilbert" else None
    theirs = peft_adapter(getattr(transformers, head).from_pretrained(base_dir).eval(), tmp_path / "adapter",
                          task_type="SEQ_CLS", r=4, lora_alpha=16, target_modules="all-linear", exclude_modules=exclude)
    batch = make_inputs(family, config, head)
    with theirs.disable_adapter():
        base = torch_logits(theirs, batch)
    expected = torch_logits(theirs, batch)
    ours = PeftModel.from_pretrained(family.ms_class(head).from_pretrained(base_dir), str(tmp_path / "adapter"))
    assert ours.peft_config["default"].target_modules == theirs.peft_config["default"].target_modules
    assert_close(ms_logits(ours, batch), expected, base)
    # Merged, against PEFT's merge (merging rounds differently from the LoRA path; ALBERT's shared layers add up
    # ~1e-5 of it). GPT-2's Conv1D merges transposed.
    assert_close(ms_logits(ours.merge_and_unload(), batch), torch_logits(theirs.merge_and_unload(), batch))


# ------------------------------------------------------------------------------------------------ ours -> PEFT
def test_our_adapter_loads_in_peft_with_the_same_logits(bert_dir, tmp_path, mode):
    model = mindone_ft.BertForSequenceClassification.from_pretrained(bert_dir)
    ms.set_seed(3)
    ours = get_peft_model(model, LoraConfig(task_type="SEQ_CLS", r=4, lora_alpha=16, use_rslora=True,
                                            target_modules=["query", "key", "dense"], exclude_modules=["pooler.dense"],
                                            init_lora_weights=False, modules_to_save=["pooler"]))
    assert "bert.pooler.dense" not in {k for k, c in model.cells_and_names() if type(c).__name__ == "LoraLinear"}
    batch = inputs()
    logits = ms_logits(ours, batch)
    ours.save_pretrained(tmp_path)
    theirs = peft.PeftModel.from_pretrained(torch_bert(bert_dir), str(tmp_path)).eval()
    assert theirs.peft_config["default"].exclude_modules == {"pooler.dense"}
    with theirs.disable_adapter():
        base = torch_logits(theirs, batch)
    assert_close(logits, torch_logits(theirs, batch), base)


def test_merge_and_unload_keeps_logits_and_saves_a_plain_checkpoint(bert_dir, tmp_path, mode):
    model = mindone_ft.BertForSequenceClassification.from_pretrained(bert_dir)
    ours = get_peft_model(model, LoraConfig(task_type="SEQ_CLS", r=4, lora_alpha=8, target_modules="all-linear",
                                            init_lora_weights=False))
    batch = inputs()
    expected = ms_logits(ours, batch)
    ours.merge_adapter()  # merged in place, LoRA layers still there (their LoRA path now off)
    np.testing.assert_allclose(ms_logits(ours, batch), expected, rtol=0, atol=ATOL)
    ours.unmerge_adapter()
    np.testing.assert_allclose(ms_logits(ours, batch), expected, rtol=0, atol=ATOL)
    merged = ours.merge_and_unload()
    assert type(merged) is mindone_ft.BertForSequenceClassification
    assert not [c for _, c in merged.cells_and_names() if isinstance(c, mindone_ft.peft.LoraLayer)]
    np.testing.assert_allclose(ms_logits(merged, batch), expected, rtol=0, atol=ATOL)
    merged.save_pretrained(tmp_path)
    reloaded = transformers.BertForSequenceClassification.from_pretrained(tmp_path).eval()
    np.testing.assert_allclose(torch_logits(reloaded, batch), expected, rtol=0, atol=ATOL)


def test_gradients_match_peft(bert_dir, tmp_path):
    """Training-mode gradients of every trainable parameter (LoRA on all linears, rsLoRA, the classifier copy)."""
    from mindone_ft.mindspore_adapter import ReturnLoss

    theirs = peft_adapter(torch_bert(bert_dir), tmp_path, task_type="SEQ_CLS", r=4, lora_alpha=8,
                          target_modules="all-linear", use_rslora=True)
    batch = inputs()
    labels = np.array([0, 2, 1])
    theirs.train()
    theirs(**{k: torch.from_numpy(v) for k, v in batch.items()}, labels=torch.from_numpy(labels)).loss.backward()
    expected = {n: p.grad.numpy() for n, p in theirs.named_parameters() if p.requires_grad}

    ours = PeftModel.from_pretrained(mindone_ft.BertForSequenceClassification.from_pretrained(bert_dir),
                                     str(tmp_path), is_trainable=True)
    ours.set_train(True)
    params = ours.trainable_params()
    names = {id(p): n for n, p in ours.named_parameters()}
    assert sorted(names[id(p)] for p in params) == sorted(expected)
    grad_fn = ms.value_and_grad(ReturnLoss(ours), None, params)
    _, grads = grad_fn(ms.Tensor(batch["input_ids"].astype(np.int32)), ms.Tensor(batch["attention_mask"].astype(
        np.int32)), None, None, None, None, ms.Tensor(labels.astype(np.int32)))
    for param, grad in zip(params, grads):
        reference = expected[names[id(param)]]
        error = np.linalg.norm(grad.asnumpy() - reference) / np.linalg.norm(reference)
        assert error < GRAD_RTOL, names[id(param)]


# ------------------------------------------------------------------------------------------------ state & API
def test_trainable_parameters_and_bias_modes_match_peft(bert_dir, tmp_path, capsys):
    for bias in ("none", "all", "lora_only"):
        config = dict(r=4, target_modules=["query", "value"], bias=bias)  # no task type: no modules_to_save
        theirs = peft.get_peft_model(torch_bert(bert_dir), peft.LoraConfig(**config))
        ours = get_peft_model(mindone_ft.BertForSequenceClassification.from_pretrained(bert_dir),
                              LoraConfig(**config))
        assert ours.get_nb_trainable_parameters() == theirs.get_nb_trainable_parameters(), bias
        assert sorted(n for n, p in ours.named_parameters() if p.requires_grad) == \
            sorted(n for n, p in theirs.named_parameters() if p.requires_grad), bias
        theirs.save_pretrained(tmp_path / bias / "theirs")
        ours.save_pretrained(tmp_path / bias / "ours")
        assert load_file(str(tmp_path / bias / "ours" / "adapter_model.safetensors")).keys() == \
            load_file(str(tmp_path / bias / "theirs" / "adapter_model.safetensors")).keys(), bias
    theirs.print_trainable_parameters()
    ours.print_trainable_parameters()
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == printed[1] and printed[0].startswith("trainable params: ")


@pytest.mark.slow  # ~40 s of recompiles; PYNATIVE adapter switching is tested in the default run
def test_graph_mode_follows_every_adapter_change(bert_dir, graph_mode):
    """GRAPH_MODE compiles which adapters run into the graph: each change must recompile, never run a stale one."""
    model = mindone_ft.BertForSequenceClassification.from_pretrained(bert_dir)
    batch = inputs()
    base = ms_logits(model, batch)
    ours = get_peft_model(model, LoraConfig(r=4, lora_alpha=64, target_modules=["query"], init_lora_weights=False))
    with_default = ms_logits(ours, batch)
    assert np.abs(with_default - base).max() > 1e-3
    ours.add_adapter("second", LoraConfig(r=2, lora_alpha=32, target_modules=["value"], init_lora_weights=False))
    np.testing.assert_allclose(ms_logits(ours, batch), with_default, rtol=0, atol=ATOL)  # added, not active
    ours.set_adapter("second")
    with_second = ms_logits(ours, batch)
    assert np.abs(with_second - with_default).max() > 1e-3 and np.abs(with_second - base).max() > 1e-3
    with ours.disable_adapter():
        np.testing.assert_allclose(ms_logits(ours, batch), base, rtol=0, atol=ATOL)
    np.testing.assert_allclose(ms_logits(ours, batch), with_second, rtol=0, atol=ATOL)
    ours.set_adapter("default")
    np.testing.assert_allclose(ms_logits(ours, batch), with_default, rtol=0, atol=ATOL)
    plain = ours.unload()
    np.testing.assert_allclose(ms_logits(plain, batch), base, rtol=0, atol=ATOL)


def test_pipeline_runs_the_adapter(bert_dir, tmp_path):
    from transformers import BertTokenizerFast

    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(94)]))
    tokenizer = BertTokenizerFast(vocab_file=str(vocab))
    ours = get_peft_model(mindone_ft.BertForSequenceClassification.from_pretrained(bert_dir),
                          LoraConfig(task_type="SEQ_CLS", r=4, target_modules=["query"], init_lora_weights=False))
    classifier = mindone_ft.pipeline("text-classification", model=ours, tokenizer=tokenizer, top_k=None)
    scores = {r["label"]: r["score"] for r in classifier(["w1 w2 w3"])[0]}
    encoded = tokenizer("w1 w2 w3", return_tensors="np")
    probs = ms.ops.softmax(ours(**encoded).logits, -1).asnumpy()[0]
    np.testing.assert_allclose([scores[f"LABEL_{i}"] for i in range(3)], probs, rtol=0, atol=1e-6)


def test_docs_example_runs(tmp_path, monkeypatch, capsys):
    """The ```python block of docs/peft.md runs as written (the real pretrained BERT; no forward pass)."""
    import re

    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs", "peft.md"), encoding="utf-8") as f:
        (code,) = re.findall(r"```python\n(.*?)```", f.read(), flags=re.S)
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(code, "docs/peft.md", "exec"), namespace)
    printed = capsys.readouterr().out.strip().splitlines()[-1]
    assert printed in code  # the output shown in the comment
    assert sorted(os.listdir(tmp_path / "my-lora")) == ["README.md", "adapter_config.json", "adapter_model.safetensors"]
    assert type(namespace["merged"]) is mindone_ft.BertForSequenceClassification
