"""The Trainer example fine-tunes other encoder families from a local folder: tiny models saved from PyTorch."""

import json
import os
import sys

import pytest
import torch
import transformers

from mindone_ft.utils import default_model_path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "examples", "bert")

TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
            max_position_embeddings=64)
FAMILIES = {
    # The offline BERT tokenizer pads with id 0, so RoBERTa's padding_idx is 0 here.
    "roberta": dict(TINY, pad_token_id=0, type_vocab_size=1),
    "deberta-v2": dict(TINY, relative_attention=True, position_buckets=8, max_relative_positions=64,
                       pos_att_type=["p2c", "c2p"], norm_rel_ebd="layer_norm", share_att_key=True,
                       position_biased_input=False, type_vocab_size=0, pad_token_id=0),
}


@pytest.mark.parametrize("model_type", list(FAMILIES))
def test_trainer_example_fine_tunes_a_local_folder(model_type, tmp_path):
    tokenizer = transformers.AutoTokenizer.from_pretrained(default_model_path())
    config = transformers.AutoConfig.for_model(model_type, vocab_size=tokenizer.vocab_size, num_labels=2,
                                               **FAMILIES[model_type])
    torch.manual_seed(0)
    folder = tmp_path / model_type
    transformers.AutoModelForSequenceClassification.from_config(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)

    csv = tmp_path / "reviews.csv"
    words = ["great", "awful"]
    csv.write_text("text,label\n" + "\n".join(f"this film is {words[i % 2]} number {i},{i % 2}" for i in range(64)))
    sys.path.insert(0, EXAMPLES)
    try:
        import finetune_with_mindspore_trainer as example
    finally:
        sys.path.pop(0)
    output_dir = tmp_path / "out"
    metrics = example.main([
        "--model_name_or_path", str(folder), "--train_file", str(csv), "--max_train_samples", "48",
        "--max_eval_samples", "16", "--max_seq_length", "16", "--num_train_epochs", "8", "--learning_rate", "5e-3",
        "--per_device_train_batch_size", "8", "--logging_steps", "1", "--save_strategy", "epoch",
        "--save_total_limit", "1", "--output_dir", str(output_dir), "--disable_tqdm", "true", "--seed", "0",
    ])
    assert "eval_loss" in metrics
    state_file = max(output_dir.glob("checkpoint-*/trainer_state.json"), key=lambda p: int(p.parent.name[11:]))
    losses = [entry["loss"] for entry in json.loads(state_file.read_text())["log_history"] if "loss" in entry]
    assert len(losses) == 48  # 6 batches x 8 epochs
    # A random tiny model starts at ln 2 and needs a few epochs to find the one word that decides the label.
    first, last = sum(losses[:6]) / 6, sum(losses[-6:]) / 6
    assert last < 0.7 * first, f"loss did not fall: {losses}"
    saved = transformers.AutoConfig.from_pretrained(output_dir)
    assert saved.model_type == model_type
