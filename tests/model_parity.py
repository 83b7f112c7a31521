"""The parity harness every model family is tested with, like transformers' `ModelTesterMixin`.

A family is tested by one class in its own test file:

    class TestRobertaParity(ModelParityTests):
        family = ModelFamily("roberta", tiny_roberta_config, heads=("RobertaModel", "RobertaForMaskedLM", ...))

For every head the harness builds the Hugging Face PyTorch model with a fixed seed (all parameters perturbed, so a
weight that is loaded into the wrong place or not at all cannot hide behind a zero bias or a unit norm), saves it,
loads the folder with mindone_ft, and checks in GRAPH and PYNATIVE mode:

- parameter names: exactly the keys transformers writes, same parameter count;
- forward: every output field (loss for each label kind, logits, hidden states, attentions) within `ATOL` on a
  padded batch (the middle row is the most padded), token-level outputs compared at real tokens only;
- gradients of the loss with respect to every parameter within `GRAD_RTOL` (relative, per parameter, plus a tiny
  absolute `GRAD_ATOL` for gradients that are exactly zero);
- save -> PyTorch reload: `from_pretrained` in transformers reports no missing, unexpected or mismatched keys and
  gets back every tensor bit for bit;
- Auto classes: the `AutoModelFor...` of each head loads the folder as that class;
- gradient checkpointing: with every dropout of the config at 0.1, a dozen AdamW steps with each layer recomputed
  end on the same parameters as without (the recomputed layers draw the masks of the first pass);
- causal LMs (`generation_heads`): greedy `generate()` token-identical to transformers' `generate()` on the
  left-padded batch (`GENERATED_TOKENS` new tokens, plain and with a repetition penalty), sampling with `top_k=1`
  equal to greedy, and incremental decoding on a key/value cache equal to the forward pass without one.
"""

import importlib
from dataclasses import dataclass, field
from typing import Callable, Dict, Sequence, Tuple

import mindspore as ms
import numpy as np
import pytest
import torch
import transformers
from mindspore import nn

ATOL = 1e-5
GRAD_RTOL = 1e-4
GRAD_ATOL = 5e-6  # on the norm of a parameter's gradient error
BATCH, NUM_CHOICES = 3, 2
GENERATED_TOKENS = 16

# Largest differences measured in this session, {model_type: {"forward": abs, "gradient": rel}}; written to a JSON file
# at the end of the run when MINDONE_FT_PARITY_FIGURES names one (tests/update_parity_figures.py).
MEASURED: Dict[str, Dict[str, float]] = {}


def record(model_type: str, kind: str, value: float) -> None:
    figures = MEASURED.setdefault(model_type, {})
    figures[kind] = max(float(value), figures.get(kind, 0.0))

# Which Auto class serves which head, by the head's class-name suffix.
AUTO_CLASS_BY_SUFFIX = {
    "ForSequenceClassification": "AutoModelForSequenceClassification",
    "ForTokenClassification": "AutoModelForTokenClassification",
    "ForQuestionAnswering": "AutoModelForQuestionAnswering",
    "ForMaskedLM": "AutoModelForMaskedLM",
    "ForMultipleChoice": "AutoModelForMultipleChoice",
    "ForPreTraining": "AutoModelForPreTraining",
    "ForCausalLM": "AutoModelForCausalLM",
    "LMHeadModel": "AutoModelForCausalLM",  # GPT-2's name for its causal LM
    "Model": "AutoModel",
}


@dataclass
class ModelFamily:
    """What the harness needs to know about a family.

    Args:
        model_type: `config.model_type` (e.g. "roberta").
        config: tiny config factory; keyword overrides (e.g. `num_labels=3`) are applied on top.
        heads: class names, the same in transformers and `mindone_ft.models.<model_type>`.
        input_names: model inputs the harness feeds; `token_type_ids` only for families that have segments.
        seq_length: tokens per row (make it longer than any local attention window of the config).
        labels: per head class name, a function `(config, rng, input_ids) -> {name: numpy array}` replacing the
            default labels of its suffix (e.g. ELECTRA's replaced-token labels for `ElectraForPreTraining`).
        model_kwargs: per head class name, constructor keyword arguments beyond the config
            (e.g. `{"BertModel": {"add_pooling_layer": False}}`).
        padding_side: "right", or "left" for decoder families (padding before the tokens, as batched prompts).
    """

    model_type: str
    config: Callable[..., transformers.PretrainedConfig]
    heads: Sequence[str]
    input_names: Tuple[str, ...] = ("input_ids", "attention_mask", "token_type_ids")
    seq_length: int = 9
    labels: Dict[str, Callable] = field(default_factory=dict)
    model_kwargs: Dict[str, dict] = field(default_factory=dict)
    padding_side: str = "right"

    def ms_class(self, name: str):
        from mindone_ft.models.auto.modeling_auto import model_module_name

        module = importlib.import_module(f"mindone_ft.models.{model_module_name(self.model_type)}")
        return getattr(module, name)


def _suffix(head: str) -> str:
    for suffix in AUTO_CLASS_BY_SUFFIX:
        if head.endswith(suffix):
            return suffix
    raise ValueError(f"{head}: no known head suffix")


def label_cases(family: ModelFamily, head: str) -> Dict[str, Tuple[dict, dict]]:
    """`{case: (config overrides, labels factory)}` for a head; the model alone has one case without labels."""
    suffix = _suffix(head)
    seq = family.seq_length
    if head in family.labels:
        return {"custom": ({}, family.labels[head])}
    if suffix == "ForSequenceClassification":
        return {
            "single_label": ({"num_labels": 3}, lambda c, rng, ids: {"labels": rng.integers(0, 3, BATCH)}),
            "regression": ({"num_labels": 1},
                           lambda c, rng, ids: {"labels": rng.normal(size=BATCH).astype(np.float32)}),
            "multi_label": ({"num_labels": 3},
                            lambda c, rng, ids: {"labels": rng.integers(0, 2, (BATCH, 3)).astype(np.float32)}),
        }
    if suffix == "ForTokenClassification":
        def token_labels(c, rng, ids):
            labels = rng.integers(0, 3, ids.shape)
            labels[:, 0] = -100
            return {"labels": labels}
        return {"token": ({"num_labels": 3}, token_labels)}
    if suffix == "ForQuestionAnswering":  # one end position outside the sequence: clamped and ignored
        return {"qa": ({}, lambda c, rng, ids: {"start_positions": np.array([1, 3, 2]),
                                                "end_positions": np.array([4, seq + 5, 2])})}
    if suffix in ("ForMaskedLM", "ForPreTraining"):
        def mlm_labels(c, rng, ids):
            labels = np.where(rng.random(ids.shape) < 0.4, rng.integers(0, c.vocab_size, ids.shape), -100)
            labels[:, 1] = rng.integers(0, c.vocab_size, ids.shape[0])  # at least one target per row
            result = {"labels": labels}
            if suffix == "ForPreTraining":
                result["next_sentence_label"] = rng.integers(0, 2, ids.shape[0])
            return result
        return {"mlm": ({}, mlm_labels)}
    if suffix in ("ForCausalLM", "LMHeadModel"):  # the model shifts them; padding is not a target
        def causal_lm_labels(c, rng, ids):
            pad = c.pad_token_id if c.pad_token_id is not None else 0  # make_inputs' padding token
            return {"labels": np.where(ids == pad, -100, ids)}
        return {"causal_lm": ({}, causal_lm_labels)}
    if suffix == "ForMultipleChoice":
        return {"choice": ({}, lambda c, rng, ids: {"labels": rng.integers(0, NUM_CHOICES, ids.shape[0])})}
    return {"base": ({}, lambda c, rng, ids: {})}


def make_inputs(family: ModelFamily, config, head: str, seed: int = 0) -> Dict[str, np.ndarray]:
    """A padded batch: row 0 full, row 1 padded from the 4th token (the most padding, in the middle of the batch),
    row 2 from the 7th (with `padding_side="left"`, as many padding tokens before the tokens); two segments where
    the family has them; `(BATCH, NUM_CHOICES, seq)` for multiple choice."""
    rng = np.random.default_rng(seed)
    seq = family.seq_length
    pad = config.pad_token_id if config.pad_token_id is not None else 0
    shape = (BATCH, seq)
    ids = rng.integers(0, config.vocab_size, shape)
    ids = np.where(ids == pad, (pad + 1) % config.vocab_size, ids)  # no pad token among real tokens
    mask = np.ones(shape, np.int64)
    mask[1, 3:] = 0
    mask[2, 6:] = 0
    if family.padding_side == "left":
        mask = np.ascontiguousarray(mask[:, ::-1])
    ids[mask == 0] = pad
    inputs = {"input_ids": ids.astype(np.int64), "attention_mask": mask}
    if "token_type_ids" in family.input_names:
        segments = np.zeros(shape, np.int64)
        if getattr(config, "type_vocab_size", 2) > 1:
            segments[:, seq // 2:] = 1
        inputs["token_type_ids"] = segments
    if _suffix(head) == "ForMultipleChoice":
        inputs = {k: np.stack([v, np.roll(v, 1, axis=0)], axis=1) for k, v in inputs.items()}
    return {k: v for k, v in inputs.items() if k in family.input_names}


def to_torch(arrays: dict) -> dict:
    return {k: torch.from_numpy(np.asarray(v)) for k, v in arrays.items()}


def to_ms(arrays: dict) -> dict:
    return {k: ms.Tensor(np.asarray(v)) for k, v in arrays.items()}


def perturbed_torch_model(family: ModelFamily, head: str, config, seed: int = 0):
    """The transformers model with every parameter moved off its initial value (biases, norms included)."""
    torch.manual_seed(seed)
    model = getattr(transformers, head)(config, **family.model_kwargs.get(head, {})).eval()
    with torch.no_grad():
        for param in model.parameters():
            param.add_(torch.randn_like(param) * 0.05)
    return model


def _valid_mask(inputs: dict) -> np.ndarray:
    mask = inputs["attention_mask"]
    return mask.reshape(-1, mask.shape[-1]).astype(bool)  # multiple choice: (batch * choices, seq)


def compare(ms_value, torch_value, valid: np.ndarray) -> float:
    """Largest absolute difference; tensors whose leading axes are (rows, seq) are compared at real tokens only
    (attentions: real query rows)."""
    got = ms_value.asnumpy().astype(np.float64)
    expected = torch_value.detach().numpy().astype(np.float64)
    assert got.shape == expected.shape, f"shape {got.shape} vs {expected.shape}"
    rows, seq = valid.shape
    if got.ndim >= 2 and got.shape[:2] == (rows, seq):
        got, expected = got[valid], expected[valid]
    elif got.ndim == 4 and got.shape[0] == rows and got.shape[2] == seq:  # attentions (rows, heads, q, k)
        got, expected = got.transpose(0, 2, 1, 3)[valid], expected.transpose(0, 2, 1, 3)[valid]
    return float(np.max(np.abs(got - expected))) if got.size else 0.0


class LossCell(nn.Cell):
    """Calls the model with positional arguments (None where not given) and returns the loss, `outputs[0]`."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def construct(self, *args):
        return self.model(*args)[0]


GC_DROPOUT, GC_STEPS, GC_STEPS_PYNATIVE = 0.1, 12, 4


def with_dropout(config, rate: float):
    """The config with every dropout probability it has (`*dropout*`, GPT-2's `*_pdrop`) set to `rate`."""
    for name, value in list(config.to_dict().items()):
        if ("dropout" in name or name.endswith("_pdrop")) and isinstance(value, float):
            setattr(config, name, rate)
    return config


def train_with_dropout(model, arguments: list, steps: int):
    """`steps` AdamW updates on the same batch in training mode (dropout on, fixed seed); returns the losses and the
    final parameters."""
    from mindone_ft.mindspore_adapter import AdamW, ReturnLoss, TrainOneStepWrapper
    from mindone_ft.trainer import reseed_dropout

    model.set_train(True)
    reseed_dropout(model, seed=123, step=0)
    step = TrainOneStepWrapper(ReturnLoss(model), AdamW(model.trainable_params(), learning_rate=1e-2), scaler="none")
    step.set_train(True)
    losses = [float(step(*arguments)[0].asnumpy()) for _ in range(steps)]
    return losses, [p.asnumpy() for p in model.trainable_params()]


def positional_arguments(model, arrays: dict) -> list:
    """The model's construct arguments in order, `None` for those not given, up to the last given one."""
    import inspect

    names = list(inspect.signature(model.construct).parameters)
    unknown = set(arrays) - set(names)
    assert not unknown, f"{type(model).__name__}.construct has no arguments {sorted(unknown)}"
    last = max(names.index(k) for k in arrays)
    return [ms.Tensor(np.asarray(arrays[n])) if n in arrays else None for n in names[: last + 1]]


def _head_case_params(family: ModelFamily):
    return [pytest.param(head, case, id=f"{head}-{case}") for head in family.heads for case in label_cases(family, head)]


def parametrize_family_tests(metafunc):
    """Parametrizes `head` (and `case`) of the harness methods from the test class's `family` (called by the
    `pytest_generate_tests` hook in conftest.py)."""
    family = metafunc.cls.family
    if "case" in metafunc.fixturenames:
        metafunc.parametrize("head,case", _head_case_params(family))
    elif "lm_head" in metafunc.fixturenames:  # heads with generate()
        heads = [h for h in family.heads if AUTO_CLASS_BY_SUFFIX[_suffix(h)] == "AutoModelForCausalLM"]
        metafunc.parametrize("lm_head", heads or [pytest.param(None, marks=pytest.mark.skip("no causal-LM head"))])
    elif "loss_head" in metafunc.fixturenames:  # heads that compute a loss
        metafunc.parametrize("loss_head", [h for h in family.heads if _suffix(h) != "Model"])
    elif "head" in metafunc.fixturenames:
        metafunc.parametrize("head", list(family.heads))


class ModelParityTests:
    """Mixin of parity tests; subclasses set `family`. Tests run in both modes through conftest's `mode` fixture."""

    family: ModelFamily = None
    # The training-only checks (gradient checkpointing) run once per family: False on a family's variant configs.
    checks_training = True

    def _config(self, head: str, case: str):
        overrides, _ = label_cases(self.family, head)[case]
        config = self.family.config(**overrides)
        config._attn_implementation = "eager"  # so that attention probabilities can be compared
        return config

    def _first_case(self, head: str) -> str:
        return next(iter(label_cases(self.family, head)))

    def _pair(self, head: str, case: str, tmp_path):
        """(config, torch model, mindone_ft model loaded from the torch model's checkpoint folder)."""
        config = self._config(head, case)
        torch_model = perturbed_torch_model(self.family, head, config)
        folder = tmp_path / "torch_checkpoint"
        torch_model.save_pretrained(folder)
        ms_model = self.family.ms_class(head).from_pretrained(folder, **self.family.model_kwargs.get(head, {}))
        return config, torch_model, ms_model, folder

    def _labels(self, head: str, case: str, config, inputs: dict) -> dict:
        """Labels from the case's factory; it sees `input_ids` (multiple choice: `(batch, choices, seq)`)."""
        _, factory = label_cases(self.family, head)[case]
        labels = factory(config, np.random.default_rng(1), inputs["input_ids"])
        return {k: np.asarray(v) for k, v in labels.items()}

    def test_parameter_names_are_the_saved_hugging_face_keys(self, head, tmp_path):
        config, torch_model, ms_model, folder = self._pair(head, self._first_case(head), tmp_path)
        from safetensors import safe_open

        with safe_open(str(folder / "model.safetensors"), "np") as handle:
            saved_keys = set(handle.keys())
        assert set(ms_model.state_dict_numpy()) == saved_keys
        assert all(p.name == n for n, p in ms_model.named_parameters_hf().items())
        assert ms_model.num_parameters() == torch_model.num_parameters()

    def test_forward_matches_transformers(self, head, case, mode, tmp_path):
        config, torch_model, ms_model, _ = self._pair(head, case, tmp_path)
        inputs = make_inputs(self.family, config, head)
        labels = self._labels(head, case, config, inputs)
        flags = dict(output_hidden_states=True, output_attentions=True)
        with torch.no_grad():
            torch_out = torch_model(**to_torch(inputs), **to_torch(labels), **flags)
        ms_out = ms_model(**to_ms(inputs), **to_ms(labels), **flags)
        # transformers fills `cross_attentions` with () for encoder-only use: not an output of ours.
        fields = [k for k, v in torch_out.items() if k != "past_key_values" and not (isinstance(v, tuple) and not v)]
        assert [k for k in ms_out.keys() if k != "past_key_values"] == fields
        if torch_out.get("past_key_values") is not None:  # the cache's keys and values, layer by layer
            diff = self._compare_caches(ms_out["past_key_values"], torch_out["past_key_values"], _valid_mask(inputs))
            print(f"[measured] {self.family.model_type}.{head}.{case}.{mode}.past_key_values: {diff:.2e}")
            assert diff < ATOL, f"{head} ({case}, {mode}): the key/value cache differs from transformers by {diff}"
        if labels:
            assert "loss" in fields and ms_out[0] is ms_out.loss
        valid = _valid_mask(inputs)
        for name in fields:
            ms_value, torch_value = ms_out[name], torch_out[name]
            if isinstance(torch_value, tuple):
                assert len(ms_value) == len(torch_value), name
                diff = max(compare(a, b, valid) for a, b in zip(ms_value, torch_value))
            else:
                diff = compare(ms_value, torch_value, valid)
            print(f"[measured] {self.family.model_type}.{head}.{case}.{mode}.{name}: {diff:.2e}")
            record(self.family.model_type, "forward", diff)
            assert diff < ATOL, f"{head} ({case}, {mode}): {name} differs from transformers by {diff}"

    @staticmethod
    def _compare_caches(ms_cache, torch_cache, valid: np.ndarray) -> float:
        assert ms_cache is not None and len(ms_cache) == len(torch_cache.layers)
        worst = 0.0
        for (key, value), torch_layer in zip(ms_cache, torch_cache.layers):
            for got, expected in ((key, torch_layer.keys), (value, torch_layer.values)):
                # transformers' sliding-window layers keep only the latest tokens; ours keep all of them
                kept = expected.shape[2]
                # (batch, heads, seq, head_dim) -> (batch, seq, ...): real tokens only
                got = got.asnumpy()[:, :, -kept:].swapaxes(1, 2)[valid[:, -kept:]]
                expected = expected.numpy().swapaxes(1, 2)[valid[:, -kept:]]
                assert got.shape == expected.shape
                worst = max(worst, float(np.abs(got - expected).max()))
        return worst

    def test_gradients_match_transformers(self, loss_head, mode, tmp_path):
        """Every head with a loss; the bare model's parameters are among theirs."""
        head = loss_head
        case = self._first_case(head)
        config, torch_model, ms_model, _ = self._pair(head, case, tmp_path)
        inputs = make_inputs(self.family, config, head)
        labels = self._labels(head, case, config, inputs)
        torch_model.zero_grad()
        torch_model(**to_torch(inputs), **to_torch(labels)).loss.backward()
        # A tied parameter under each of its names: which one `named_parameters()` reports depends on the order
        # the modules were registered in (XLMRobertaForMaskedLM registers `roberta` after `lm_head`).
        torch_params = {n: p for n, p in torch_model.named_parameters(remove_duplicate=False) if p.grad is not None}
        torch_grads = {n: p.grad.numpy() for n, p in torch_params.items()}

        weights = ms_model.trainable_params()
        grad_fn = ms.value_and_grad(LossCell(ms_model), None, weights)
        _, grads = grad_fn(*positional_arguments(ms_model, {**inputs, **labels}))
        hf_names = {id(p): n for n, p in ms_model.named_parameters_hf().items()}
        names = [hf_names[id(p)] for p in weights]
        assert set(names) <= set(torch_grads) and len(names) == len({id(p) for p in torch_params.values()})
        worst = 0.0
        for param, grad in zip(weights, grads):
            name = hf_names[id(param)]
            expected = torch_grads[name]
            diff, norm = np.linalg.norm(grad.asnumpy() - expected), np.linalg.norm(expected)
            # The absolute term is for gradients that are exactly 0 (a bias that shifts every logit of a softmax
            # alike: attention key bias, the multiple-choice classifier bias, the last LayerNorm bias under a
            # span head), where both frameworks return float32 noise (up to ~2e-6 in MindSpore, measured); real
            # gradients here are 1e-3..1.
            assert diff <= GRAD_RTOL * norm + GRAD_ATOL, f"{head} ({mode}): {name} gradient error {diff} (norm {norm})"
            if norm > 100 * GRAD_ATOL:
                worst = max(worst, diff / norm)
        print(f"[measured] {self.family.model_type}.{head}.grad.{mode}: {worst:.2e} relative")
        record(self.family.model_type, "gradient", worst)

    def test_gradient_checkpointing_keeps_the_training_numbers(self, loss_head, mode, tmp_path):
        """Cheap per family: the first head with a loss (parametrized over all, the rest skipped)."""
        head = loss_head
        if not self.checks_training or head != next(h for h in self.family.heads if _suffix(h) != "Model"):
            pytest.skip("checked once per family, on its first head with a loss")
        config = with_dropout(self._config(head, self._first_case(head)), GC_DROPOUT)
        folder = tmp_path / "torch_checkpoint"
        perturbed_torch_model(self.family, head, config).save_pretrained(folder)
        inputs = make_inputs(self.family, config, head)
        arrays = {**inputs, **self._labels(head, self._first_case(head), config, inputs)}
        steps = GC_STEPS if mode == "graph" else GC_STEPS_PYNATIVE  # PyNative steps are slow
        runs = {}
        for checkpointing in (False, True):
            model = self.family.ms_class(head).from_pretrained(folder, **self.family.model_kwargs.get(head, {}))
            if checkpointing:
                model.gradient_checkpointing_enable()
            assert model.is_gradient_checkpointing == checkpointing
            runs[checkpointing] = train_with_dropout(model, positional_arguments(model, arrays), steps)
        (losses, params), (gc_losses, gc_params) = runs[False], runs[True]
        assert len(set(losses)) == steps, "the masks (and so the losses) must change from step to step"
        np.testing.assert_allclose(gc_losses, losses, rtol=1e-6, atol=0)
        worst = max(float(np.max(np.abs(a - b))) for a, b in zip(gc_params, params))
        assert worst <= 1e-5, f"{head} ({mode}): parameters differ by {worst} after {steps} steps"

    def test_saved_checkpoint_reloads_in_pytorch(self, head, tmp_path):
        config, torch_model, ms_model, _ = self._pair(head, self._first_case(head), tmp_path)
        out = tmp_path / "mindone_ft_checkpoint"
        ms_model.save_pretrained(out)
        reloaded, info = getattr(transformers, head).from_pretrained(
            out, output_loading_info=True, **self.family.model_kwargs.get(head, {})
        )
        assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
        expected = torch_model.state_dict()
        for name, tensor in reloaded.state_dict().items():
            assert torch.equal(tensor, expected[name]), name

    def test_auto_class_loads_the_head(self, head, tmp_path):
        import mindone_ft

        if head in self.family.model_kwargs:
            pytest.skip("constructor arguments beyond the config")
        config, _, _, folder = self._pair(head, self._first_case(head), tmp_path)
        auto = getattr(mindone_ft, AUTO_CLASS_BY_SUFFIX[_suffix(head)])
        assert type(auto.from_pretrained(folder)).__name__ == head

    # --- causal LMs: generate() and the key/value cache --------------------------------------------------------

    def _generation_pair(self, head: str, tmp_path):
        config, torch_model, ms_model, _ = self._pair(head, self._first_case(head), tmp_path)
        inputs = make_inputs(self.family, config, head)
        return config, torch_model, ms_model, inputs

    def test_greedy_generate_matches_transformers(self, lm_head, mode, tmp_path):
        config, torch_model, ms_model, inputs = self._generation_pair(lm_head, tmp_path)
        for settings in ({}, {"repetition_penalty": 1.5}):
            # min_new_tokens: every row generates all the tokens, none stops at an end-of-sequence token
            kwargs = dict(max_new_tokens=GENERATED_TOKENS, min_new_tokens=GENERATED_TOKENS, do_sample=False, **settings)
            with torch.no_grad():
                expected = torch_model.generate(**to_torch(inputs), **kwargs).numpy()
            got = ms_model.generate(**inputs, **kwargs)
            assert got.shape == expected.shape == (BATCH, self.family.seq_length + GENERATED_TOKENS)
            assert (got == expected).all(), f"{lm_head} ({mode}, {settings}):\n{got}\n!=\n{expected}"

    def test_sampling_with_top_k_1_is_greedy(self, lm_head, mode, tmp_path):
        _, _, ms_model, inputs = self._generation_pair(lm_head, tmp_path)
        kwargs = dict(max_new_tokens=8, min_new_tokens=8)
        greedy = ms_model.generate(**inputs, do_sample=False, **kwargs)
        sampled = ms_model.generate(**inputs, do_sample=True, top_k=1, temperature=0.7, seed=3, **kwargs)
        assert (sampled == greedy).all()

    def test_cached_decoding_matches_full_forward(self, lm_head, mode, tmp_path):
        """The prompt, then three tokens one at a time on a `DynamicCache`: the logits of each step equal those of
        the forward pass over the whole sequence without a cache (same positions, from the attention mask)."""
        from mindone_ft import DynamicCache

        config, _, ms_model, inputs = self._generation_pair(lm_head, tmp_path)
        rng = np.random.default_rng(5)
        extra = rng.integers(1, config.vocab_size, (BATCH, 3))
        ids = np.concatenate([inputs["input_ids"], extra], axis=1)
        mask = np.concatenate([inputs["attention_mask"], np.ones_like(extra)], axis=1)
        positions = np.where(mask == 0, 1, np.cumsum(mask, axis=1) - 1)
        full = ms_model(input_ids=ms.Tensor(ids), attention_mask=ms.Tensor(mask), position_ids=ms.Tensor(positions),
                        use_cache=False).logits.asnumpy()
        cache = DynamicCache()
        prompt = self.family.seq_length
        out = ms_model(input_ids=ms.Tensor(ids[:, :prompt]), attention_mask=ms.Tensor(mask[:, :prompt]),
                       position_ids=ms.Tensor(positions[:, :prompt]), past_key_values=cache, use_cache=True)
        assert out.past_key_values is cache and cache.get_seq_length() == prompt
        valid = mask[:, :prompt].astype(bool)
        worst = float(np.abs(out.logits.asnumpy() - full[:, :prompt])[valid].max())
        for t in range(prompt, ids.shape[1]):
            out = ms_model(input_ids=ms.Tensor(ids[:, t:t + 1]), attention_mask=ms.Tensor(mask[:, :t + 1]),
                           position_ids=ms.Tensor(positions[:, t:t + 1]), past_key_values=cache, use_cache=True)
            worst = max(worst, float(np.abs(out.logits.asnumpy()[:, 0] - full[:, t]).max()))
        assert cache.get_seq_length() == ids.shape[1] and len(cache) == config.num_hidden_layers
        print(f"[measured] {self.family.model_type}.{lm_head}.cache.{mode}: {worst:.2e}")
        assert worst < ATOL
