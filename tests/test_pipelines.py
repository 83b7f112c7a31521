"""`mindone_ft.pipeline(...)` against transformers' PyTorch `transformers.pipeline(...)` on the same folders.

Tiny random BERTs are saved from PyTorch with the offline BERT tokenizer; both pipelines load the same folder and
must give the same labels, tokens, entity groups and answer spans, with scores within 1e-4. transformers 5 has no
question-answering pipeline any more, so question answering is checked against a brute-force reference on the
PyTorch model's logits. One subprocess runs every task with torch made unimportable. PYNATIVE mode (no graph
compiles) except one GRAPH_MODE test.
"""

import json
import math
import os
import subprocess
import sys
import textwrap

import mindspore as ms
import numpy as np
import pytest
import torch
import transformers

import mindone_ft
from mindone_ft.pipelines import SUPPORTED_TASKS
from mindone_ft.utils import default_model_path

TOLERANCE = 1e-4
LABELS = ["NEGATIVE", "NEUTRAL", "POSITIVE"]
NER_LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
TEXTS = ["I love this movie, it is wonderful!", "A dull, overlong and painfully unfunny film."]
SENTENCE = "Jean-Baptiste Lamarck lived in Montréal and New York City before joining Hugging Face in Paris."
QUESTION = "Where did Jean-Baptiste live?"
CONTEXT = ("Jean-Baptiste Lamarck was a naturalist. He lived in Montréal and later in New York City, before he "
           "joined Hugging Face in Paris, where he works on question answering.")
MASKED = ["Paris is the [MASK] of France.", "The [MASK] sat on the [MASK]."]

MEASURED = {}  # task -> largest score difference seen, printed at the end of the module (pytest -s)


@pytest.fixture(scope="module", autouse=True)
def _report():
    yield
    print("\nlargest score differences from transformers (PyTorch):",
          {task: f"{value:.1e}" for task, value in sorted(MEASURED.items())})


@pytest.fixture(autouse=True)
def _pynative():
    previous = ms.get_context("mode")
    ms.set_context(mode=ms.PYNATIVE_MODE)
    yield
    ms.set_context(mode=previous)


@pytest.fixture(scope="module")
def tokenizer():
    return transformers.AutoTokenizer.from_pretrained(default_model_path())


def _save_tiny(root, name, model_class, tokenizer, **config):
    torch.manual_seed(0)
    values = dict(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                  intermediate_size=37, max_position_embeddings=512, initializer_range=0.2)
    values.update(config)
    model = model_class(transformers.BertConfig(**values)).eval()
    folder = os.path.join(root, name)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def _labels(names):
    return dict(num_labels=len(names), id2label=dict(enumerate(names)), label2id={n: i for i, n in enumerate(names)})


@pytest.fixture(scope="module")
def folders(tmp_path_factory, tokenizer):
    root = str(tmp_path_factory.mktemp("pipelines"))
    return {
        "text-classification": _save_tiny(root, "tc", transformers.BertForSequenceClassification, tokenizer,
                                          **_labels(LABELS)),
        "multi-label": _save_tiny(root, "ml", transformers.BertForSequenceClassification, tokenizer,
                                  problem_type="multi_label_classification", **_labels(LABELS)),
        "token-classification": _save_tiny(root, "tk", transformers.BertForTokenClassification, tokenizer,
                                           **_labels(NER_LABELS)),
        "question-answering": _save_tiny(root, "qa", transformers.BertForQuestionAnswering, tokenizer),
        "fill-mask": _save_tiny(root, "fm", transformers.BertForMaskedLM, tokenizer),
        "feature-extraction": _save_tiny(root, "fe", transformers.BertModel, tokenizer),
    }


def assert_same(ours, theirs, task, path="output"):
    """Same structure, keys, strings and ints; floats within TOLERANCE (the largest difference is recorded)."""
    if isinstance(theirs, dict):
        assert isinstance(ours, dict) and set(ours) == set(theirs), f"{path}: keys {ours} vs {theirs}"
        for key in theirs:
            assert_same(ours[key], theirs[key], task, f"{path}[{key!r}]")
    elif isinstance(theirs, (list, tuple)):
        assert isinstance(ours, (list, tuple)) and len(ours) == len(theirs), f"{path}: {ours} vs {theirs}"
        for i, (a, b) in enumerate(zip(ours, theirs)):
            assert_same(a, b, task, f"{path}[{i}]")
    elif isinstance(theirs, (float, np.floating)):
        assert isinstance(ours, (float, np.floating)), f"{path}: {ours!r} vs {theirs!r}"
        difference = abs(float(ours) - float(theirs))
        MEASURED[task] = max(MEASURED.get(task, 0.0), difference)
        assert difference <= TOLERANCE, f"{path}: {ours} vs {theirs}"
    else:
        assert type(ours) is type(theirs) and ours == theirs, f"{path}: {ours!r} vs {theirs!r}"


def _both(task, folder, *args, init=None, **kwargs):
    init = init or {}
    ours = mindone_ft.pipeline(task, model=folder, **init)(*args, **kwargs)
    theirs = transformers.pipeline(task, model=folder, **init)(*args, **kwargs)
    return ours, theirs


# ------------------------------------------------------------------------------------------- text classification
@pytest.mark.parametrize("kwargs", [
    {}, {"top_k": None}, {"top_k": 2}, {"function_to_apply": "sigmoid"}, {"function_to_apply": "none", "top_k": 1},
])
def test_text_classification_matches_transformers(folders, kwargs):
    folder = folders["text-classification"]
    ours = mindone_ft.pipeline("sentiment-analysis", model=folder)
    theirs = transformers.pipeline("sentiment-analysis", model=folder)
    for inputs in (TEXTS, TEXTS[0], {"text": TEXTS[0], "text_pair": TEXTS[1]}):
        assert_same(ours(inputs, **kwargs), theirs(inputs, **kwargs), "text-classification")


def test_text_classification_multi_label_uses_sigmoid(folders):
    ours, theirs = _both("text-classification", folders["multi-label"], TEXTS, top_k=None)
    assert_same(ours, theirs, "text-classification")
    assert sum(entry["score"] for entry in ours[0]) > 1.0  # independent sigmoids, not a softmax
    # Parameters given at construction are the defaults of every call, as in transformers.
    ours, theirs = _both("text-classification", folders["multi-label"], TEXTS, init={"top_k": 2})
    assert_same(ours, theirs, "text-classification")


def test_text_classification_graph_mode(folders):
    ms.set_context(mode=ms.GRAPH_MODE)
    ours, theirs = _both("text-classification", folders["text-classification"], TEXTS, top_k=None)
    assert_same(ours, theirs, "text-classification (graph)")


# ------------------------------------------------------------------------------------------ token classification
@pytest.mark.parametrize("strategy", ["none", "simple", "first", "average", "max"])
def test_token_classification_matches_transformers(folders, strategy):
    folder = folders["token-classification"]
    for ignore_labels in (None, []):
        kwargs = {"aggregation_strategy": strategy}
        if ignore_labels is not None:
            kwargs["ignore_labels"] = ignore_labels
        ours, theirs = _both("ner", folder, SENTENCE, init=kwargs)
        assert ours, "the tiny model should tag something"
        assert_same(ours, theirs, "token-classification")
    ours, theirs = _both("token-classification", folder, [SENTENCE, TEXTS[0]], init={"aggregation_strategy": strategy})
    assert_same(ours, theirs, "token-classification")


def test_token_classification_long_text_with_stride_and_split_words(folders):
    folder = folders["token-classification"]
    short = transformers.AutoTokenizer.from_pretrained(folder, model_max_length=16)
    init = {"aggregation_strategy": "first", "stride": 4, "tokenizer": short, "ignore_labels": []}
    ours, theirs = _both("ner", folder, SENTENCE, init=init)
    assert_same(ours, theirs, "token-classification")
    words = SENTENCE.split()
    ours, theirs = _both("ner", folder, words, is_split_into_words=True, init={"aggregation_strategy": "simple"})
    assert_same(ours, theirs, "token-classification")


# --------------------------------------------------------------------------------------------------- fill-mask
def test_fill_mask_matches_transformers(folders):
    folder = folders["fill-mask"]
    ours = mindone_ft.pipeline("fill-mask", model=folder)
    theirs = transformers.pipeline("fill-mask", model=folder)
    for kwargs in ({}, {"top_k": 3}, {"targets": ["capital", "city", "cat", "mat"]}, {"targets": "capital"}):
        for inputs in (MASKED[0], MASKED[1], MASKED):
            assert_same(ours(inputs, **kwargs), theirs(inputs, **kwargs), "fill-mask")
    with pytest.raises(Exception, match="No mask_token"):
        ours("no mask here")


# ---------------------------------------------------------------------------------------------- feature extraction
def test_feature_extraction_matches_transformers(folders):
    folder = folders["feature-extraction"]
    ours, theirs = _both("feature-extraction", folder, TEXTS)
    assert [np.shape(item) for item in ours] == [np.shape(item) for item in theirs]  # [1, tokens, 32] each
    assert isinstance(ours[0][0][0], list) and np.shape(ours[0])[-1] == 32
    assert_same(ours, theirs, "feature-extraction")
    tensor = mindone_ft.pipeline("feature-extraction", model=folder)(TEXTS[0], return_tensors=True)
    assert isinstance(tensor, ms.Tensor) and tensor.shape == (1, len(ours[0][0]), 32)


def test_feature_extraction_real_checkpoint_is_the_default_model():
    ours = mindone_ft.pipeline("feature-extraction")  # no model: the offline all-MiniLM-L6-v2
    theirs = transformers.pipeline("feature-extraction", model=default_model_path())
    got, expected = np.array(ours(TEXTS[0])), np.array(theirs(TEXTS[0]))
    assert got.shape == expected.shape == (1, len(theirs.tokenizer(TEXTS[0])["input_ids"]), 384)
    difference = float(np.abs(got - expected).max())
    MEASURED["feature-extraction (real checkpoint)"] = difference
    assert difference <= TOLERANCE


# --------------------------------------------------------------------------------------------- question answering
def reference_answers(folder, question, context, top_k=1, handle_impossible_answer=False, max_answer_len=15,
                      max_seq_len=384, doc_stride=None):
    """transformers 4's question-answering result, by brute force over every span on the PyTorch model's logits:
    softmax over the context tokens and [CLS], score p_start * p_end, answers widened to whole words."""
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    model = transformers.BertForQuestionAnswering.from_pretrained(folder).eval()
    max_seq_len = min(tokenizer.model_max_length, max_seq_len)
    doc_stride = min(max_seq_len // 2, 128) if doc_stride is None else doc_stride
    encoded = tokenizer(question, context, truncation="only_second", max_length=max_seq_len, stride=doc_stride,
                        return_overflowing_tokens=True, return_offsets_mapping=True)
    answers, null_score = [], math.inf
    for span in range(len(encoded["input_ids"])):
        with torch.no_grad():
            output = model(**{name: torch.tensor([encoded[name][span]])
                              for name in ("input_ids", "token_type_ids", "attention_mask")})
        context_tokens = [i for i, seq in enumerate(encoded.sequence_ids(span)) if seq == 1]
        kept = [0] + context_tokens

        def probabilities(logits):
            values = logits[0].double().numpy()[kept]
            result = np.zeros(logits.shape[1])
            result[kept] = np.exp(values - values.max()) / np.exp(values - values.max()).sum()
            return result

        p_start, p_end = probabilities(output.start_logits), probabilities(output.end_logits)
        null_score = min(null_score, p_start[0] * p_end[0])
        encoding, candidates = encoded[span], []
        for s in context_tokens:
            for e in context_tokens:
                if s <= e < s + max_answer_len:
                    start = encoding.word_to_chars(encoding.token_to_word(s), sequence_index=1)[0]
                    end = encoding.word_to_chars(encoding.token_to_word(e), sequence_index=1)[1]
                    candidates.append({"score": p_start[s] * p_end[e], "start": start, "end": end,
                                       "answer": context[start:end]})
        answers += sorted(candidates, key=lambda answer: answer["score"], reverse=True)[:top_k]
    if handle_impossible_answer:
        answers.append({"score": null_score, "start": 0, "end": 0, "answer": ""})
    answers = sorted(answers, key=lambda answer: answer["score"], reverse=True)[:top_k]
    return answers[0] if len(answers) == 1 else answers


@pytest.mark.parametrize("kwargs", [
    {}, {"top_k": 3}, {"top_k": 2, "handle_impossible_answer": True}, {"max_answer_len": 3, "top_k": 4},
    {"max_seq_len": 32, "doc_stride": 8, "top_k": 3},  # several overlapping spans
])
def test_question_answering_matches_reference(folders, kwargs):
    folder = folders["question-answering"]
    qa = mindone_ft.pipeline("question-answering", model=folder)
    ours = qa(question=QUESTION, context=CONTEXT, **kwargs)
    assert_same(ours, reference_answers(folder, QUESTION, CONTEXT, **kwargs), "question-answering")
    for answer in ours if isinstance(ours, list) else [ours]:
        assert CONTEXT[answer["start"]:answer["end"]] == answer["answer"]


def test_question_answering_call_forms(folders):
    folder = folders["question-answering"]
    qa = mindone_ft.pipeline("question-answering", model=folder, top_k=2)  # a default of every call
    expected = reference_answers(folder, QUESTION, CONTEXT, top_k=2)
    assert_same(qa(QUESTION, CONTEXT), expected, "question-answering")
    assert_same(qa({"question": QUESTION, "context": CONTEXT}), expected, "question-answering")
    other = "Who works on question answering?"
    batch = qa(question=[QUESTION, other], context=CONTEXT, top_k=1)
    assert_same(batch, [reference_answers(folder, q, CONTEXT) for q in (QUESTION, other)], "question-answering")
    assert_same(qa([{"question": QUESTION, "context": CONTEXT}] * 2, top_k=1), [batch[0]] * 2, "question-answering")
    with pytest.raises(ValueError, match="top_k"):
        qa(question=QUESTION, context=CONTEXT, top_k=0)
    with pytest.raises(ValueError, match="cannot be empty"):
        qa(question="", context=CONTEXT)


# ------------------------------------------------------------------------------------------------ pipeline(...)
def test_model_and_tokenizer_instances_task_inference_device_and_dtype(folders, tokenizer):
    folder = folders["text-classification"]
    expected = transformers.pipeline("text-classification", model=folder)(TEXTS)
    model = mindone_ft.AutoModelForSequenceClassification.from_pretrained(folder)
    for pipe in (
        mindone_ft.pipeline("text-classification", model=model, tokenizer=tokenizer),
        mindone_ft.pipeline("text-classification", model=model),  # tokenizer from config.name_or_path
        mindone_ft.pipeline(model=folder, device="cpu", dtype="float32"),  # task from config.architectures
        mindone_ft.pipeline("text-classification", model=folder, tokenizer=folder, device=-1, batch_size=2),
    ):
        assert isinstance(pipe, SUPPORTED_TASKS["text-classification"]["impl"])
        assert pipe.device == "CPU" and pipe.device.type == "cpu"
        assert_same(pipe(TEXTS), expected, "text-classification")
        assert_same(list(pipe(text for text in TEXTS)), expected, "text-classification")  # generators stream
    assert mindone_ft.pipeline("ner", model=folders["token-classification"]).task == "ner"
    fp16 = mindone_ft.pipeline("text-classification", model=folder, dtype="float16")
    assert fp16.model.dtype == ms.float16 and [r["label"] for r in fp16(TEXTS)] == [r["label"] for r in expected]


def test_unsupported_tasks_and_arguments_raise_clearly(folders):
    with pytest.raises(NotImplementedError, match="encoder-decoder"):
        mindone_ft.pipeline("summarization", model=folders["fill-mask"])
    with pytest.raises(ValueError, match="Pass `model=`"):
        mindone_ft.pipeline("text-generation")
    with pytest.raises(KeyError, match="Unknown task"):
        mindone_ft.pipeline("image-classification", model=folders["fill-mask"])
    with pytest.raises(RuntimeError, match="without either a task or a model"):
        mindone_ft.pipeline()
    with pytest.raises(ValueError, match="Pass `model=`"):
        mindone_ft.pipeline("fill-mask")
    with pytest.raises(ValueError, match="device_map"):
        mindone_ft.pipeline("fill-mask", model=folders["fill-mask"], device_map="auto")
    with pytest.raises(ValueError, match="Unknown device"):
        mindone_ft.pipeline("fill-mask", model=folders["fill-mask"], device="tpu")


# ---------------------------------------------------------------------------------------------- without torch
_NO_TORCH_SCRIPT = textwrap.dedent("""
    import json, sys
    for name in ("torch", "torchvision", "torchaudio", "accelerate"):
        sys.modules[name] = None  # `import torch` now raises ImportError; transformers sees no torch
    import mindspore as ms
    import mindone_ft
    ms.set_context(mode=ms.PYNATIVE_MODE)
    folders = json.loads(sys.argv[1])
    texts, sentence, question, context, masked = json.loads(sys.argv[2])
    results = {
        "text-classification": mindone_ft.pipeline("sentiment-analysis", model=folders["text-classification"])(
            texts, top_k=None),
        "token-classification": mindone_ft.pipeline(
            "ner", model=folders["token-classification"], aggregation_strategy="simple")(sentence),
        "fill-mask": mindone_ft.pipeline("fill-mask", model=folders["fill-mask"])(masked, top_k=3),
        "feature-extraction": mindone_ft.pipeline("feature-extraction", model=folders["feature-extraction"])(texts),
        "question-answering": mindone_ft.pipeline("question-answering", model=folders["question-answering"])(
            question=question, context=context, top_k=2, handle_impossible_answer=True),
    }
    loaded = sorted(name for name, module in sys.modules.items() if name.split(".")[0] == "torch" and module)
    print("RESULT" + json.dumps({"results": results, "torch_modules": loaded}, default=float))
""")


def test_pipelines_run_without_torch(folders):
    arguments = [TEXTS, SENTENCE, QUESTION, CONTEXT, MASKED]
    completed = subprocess.run(
        [sys.executable, "-c", _NO_TORCH_SCRIPT, json.dumps(folders), json.dumps(arguments)],
        capture_output=True, text=True, timeout=240, env={**os.environ, "GLOG_v": "3"},
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    line = next(line for line in completed.stdout.splitlines() if line.startswith("RESULT"))
    payload = json.loads(line[len("RESULT"):])
    assert payload["torch_modules"] == []
    results = payload["results"]
    expected = {
        "text-classification": transformers.pipeline("sentiment-analysis", model=folders["text-classification"])(
            TEXTS, top_k=None),
        "token-classification": transformers.pipeline(
            "ner", model=folders["token-classification"], aggregation_strategy="simple")(SENTENCE),
        "fill-mask": transformers.pipeline("fill-mask", model=folders["fill-mask"])(MASKED, top_k=3),
        "feature-extraction": transformers.pipeline("feature-extraction", model=folders["feature-extraction"])(TEXTS),
        "question-answering": reference_answers(folders["question-answering"], QUESTION, CONTEXT, top_k=2,
                                                handle_impossible_answer=True),
    }
    for task, theirs in expected.items():
        theirs = json.loads(json.dumps(theirs, default=float))  # the same JSON round trip (np.float32 -> float)
        assert_same(results[task], theirs, f"{task} (no torch)")


def test_pipeline_code_never_imports_torch():
    package = os.path.dirname(mindone_ft.pipelines.__file__)
    for name in os.listdir(package):
        if name.endswith(".py"):
            with open(os.path.join(package, name), encoding="utf-8") as handle:
                source = handle.read()
            assert "import torch" not in source and "from torch" not in source, name


def test_docs_example_runs(capsys):
    """The ```python blocks of docs/pipelines.md run as written (```py blocks need fine-tuned checkpoints)."""
    import re

    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs", "pipelines.md")
    with open(path, encoding="utf-8") as handle:
        blocks = re.findall(r"```python\n(.*?)```", handle.read(), flags=re.S)
    assert blocks
    exec(compile("\n".join(blocks), path, "exec"), {"__name__": "docs_pipelines"})
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "9 384"
    assert {entry["label"] for entry in eval(printed[2])[0]} == {"rotten", "fresh"}


def test_text_generation_matches_transformers(model_path, tmp_path, pynative):
    """Greedy generation through both pipelines from one tiny Llama: full text, new text only, token ids, lists."""
    import torch

    tokenizer = transformers.AutoTokenizer.from_pretrained(model_path)
    tokenizer.eos_token = tokenizer.sep_token
    config = transformers.LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                                      num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                      pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    torch.manual_seed(0)
    torch_model = transformers.LlamaForCausalLM(config).eval()
    with torch.no_grad():
        for param in torch_model.parameters():
            param.mul_(4.0)  # peaked logits: greedy choices far from float32 noise
    folder = tmp_path / "tiny_llama"
    torch_model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    theirs = transformers.pipeline("text-generation", model=torch_model, tokenizer=tokenizer)
    ours = mindone_ft.pipeline(model=str(folder))  # the task from config.architectures
    assert isinstance(ours, mindone_ft.pipelines.TextGenerationPipeline)
    prompts = ["a gem of a film", "the plot is thin and the acting wooden"]
    for kwargs in ({}, {"return_full_text": False}, {"return_tensors": True}):
        settings = dict(max_new_tokens=6, do_sample=False, **kwargs)
        assert ours(prompts, **settings) == theirs(prompts, **settings), kwargs
        assert ours(prompts[0], **settings) == theirs(prompts[0], **settings), kwargs
