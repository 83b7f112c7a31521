"""PyTorch's `train()` / `eval()` on MindSpore Cells.

MindSpore switches dropout and the other train-only behaviour with `Cell.set_train(mode)`; Hugging Face code and
tutorials call `model.train()` and `model.eval()`. The mixin gives both names to the Cells users handle directly
(`MSPreTrainedModel`, `TrainOneStepWrapper`), with torch's semantics: they return the Cell itself, so
`model.eval()(**inputs)` works, and `Cell.training` reflects the mode.
"""

from mindspore import nn


class TrainEvalModeMixin:
    """Adds `train(mode=True)` and `eval()` to an `nn.Cell` subclass (put it before `nn.Cell` in the bases)."""

    def train(self: nn.Cell, mode: bool = True) -> nn.Cell:
        """Sets training mode (dropout on) for this Cell and all its sub-Cells, like `torch.nn.Module.train`.

        Args:
            mode (`bool`, *optional*, defaults to `True`): `True` for training, `False` for evaluation.

        Returns:
            The Cell itself.
        """
        if not isinstance(mode, bool):
            raise ValueError(f"training mode is expected to be boolean, got {type(mode).__name__}.")
        self.set_train(mode)
        return self

    def eval(self: nn.Cell) -> nn.Cell:
        """Sets evaluation mode (dropout off), like `torch.nn.Module.eval`; same as `set_train(False)`.

        Returns:
            The Cell itself.
        """
        self.set_train(False)
        return self
