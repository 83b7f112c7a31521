"""AdamW with the exact update of `torch.optim.AdamW`, and a per-step learning-rate array.

MindSpore's `nn.AdamWeightDecay` has no bias correction, so it does not reproduce PyTorch fine-tuning runs.
This optimizer does: bias-corrected moments, `eps` added outside the square root, and decoupled weight decay
`p -= lr * weight_decay * p` applied before the Adam step.

Three implementations of the same update: mindone_ft's fused CPU kernel (one pass over memory, torch's order of
float32 operations), MindSpore's fused `AdamWeightDecay` kernel on other backends, and composed MindSpore ops
for other dtypes (or `fused=False`).
"""

from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

import mindspore as ms
from mindspore import Parameter, ParameterTuple, Tensor, nn, ops

from ..kernels import cpu
from ..utils import compat
from .loss_scaler import scale_all

_adamw_update = ops.MultitypeFuncGraph("adamw_update")


@_adamw_update.register(
    "Tensor", "Tensor", "Tensor", "Number", "Number", "Number", "Number", "Tensor", "Tensor", "Tensor", "Tensor"
)
def _update_one(
    lr, step_size, bias_correction2_sqrt, beta1, beta2, eps, weight_decay, param, exp_avg, exp_avg_sq, grad
):
    """One parameter's AdamW step, in float32 whatever the parameter dtype (same order of ops as torch)."""
    grad = grad.astype(ms.float32)
    value = param.astype(ms.float32)
    if weight_decay != 0.0:
        value = value * (1.0 - lr * weight_decay)
    new_exp_avg = exp_avg + (grad - exp_avg) * (1.0 - beta1)
    new_exp_avg_sq = exp_avg_sq * beta2 + grad * grad * (1.0 - beta2)
    denom = ops.sqrt(new_exp_avg_sq) / bias_correction2_sqrt + eps
    value = value - step_size * new_exp_avg / denom
    ops.assign(exp_avg, new_exp_avg)
    ops.assign(exp_avg_sq, new_exp_avg_sq)
    ops.assign(param, value.astype(param.dtype))
    return True


_fused_adamw_update = ops.MultitypeFuncGraph("fused_adamw_update")


@_fused_adamw_update.register(
    "Function", "Tensor", "Tensor", "Tensor", "Tensor", "Tensor", "Number", "Tensor", "Tensor", "Tensor", "Tensor"
)
def _fused_update_one(adam_op, lr, beta1, beta2, eps, decay_scale, weight_decay, param, exp_avg, exp_avg_sq, grad):
    """One parameter's step with MindSpore's fused AdamWeightDecay kernel (one pass over memory)."""
    adam_op(param, exp_avg, exp_avg_sq, lr, beta1, beta2, eps, decay_scale * weight_decay, grad)
    return True


_kernel_adamw_update = ops.MultitypeFuncGraph("kernel_adamw_update")


@_kernel_adamw_update.register("Function", "Tensor", "Tensor", "Tensor", "Tensor", "Tensor", "Tensor")
def _kernel_update_one(adam_op, step_hyper, constants, param, exp_avg, exp_avg_sq, grad):
    """One parameter's step with mindone_ft's CPU kernel, which writes param and moments in place."""
    adam_op(param, exp_avg, exp_avg_sq, grad, ops.concat((step_hyper, constants)))
    return True


def is_no_decay_parameter(name: str) -> bool:
    """Hugging Face's rule: no weight decay for biases and normalisation weights."""
    lowered = name.lower()
    return lowered.endswith("bias") or "norm" in lowered


def _flatten_groups(params: Iterable[Any], weight_decay: float) -> Tuple[List[Parameter], List[float]]:
    """Parameters and their weight decay, from a list of Parameters or of torch-style group dicts."""
    params = list(params)
    if params and isinstance(params[0], dict):
        flat, decays = [], []
        for group in params:
            group_decay = float(group.get("weight_decay", weight_decay))
            flat += list(group["params"])
            decays += [group_decay] * len(group["params"])
        return flat, decays
    decays = [0.0 if is_no_decay_parameter(p.name) else float(weight_decay) for p in params]
    return params, decays


class AdamW(nn.Cell):
    """AdamW matching `torch.optim.AdamW`, usable inside a GRAPH_MODE train step.

    Args:
        params: trainable Parameters (e.g. `model.trainable_params()`), or a list of group dicts
            `{"params": [...], "weight_decay": float}` as in PyTorch.
        learning_rate (`float` or sequence of `float`, *optional*, defaults to 1e-3): a constant, or one value
            per optimizer update (a precomputed schedule); update `i` uses `learning_rate[min(i, len - 1)]`.
        betas (`Tuple[float, float]`, *optional*, defaults to `(0.9, 0.999)`).
        eps (`float`, *optional*, defaults to 1e-8): added to the bias-corrected `sqrt(v)`, as in PyTorch.
        weight_decay (`float`, *optional*, defaults to 0.0): decoupled weight decay. With a plain parameter
            list, biases and normalisation weights get none (Hugging Face's grouping).
        fused (`bool`, *optional*): update each parameter with one fused kernel (one pass over memory) instead of
            composed ops. On CPU it is mindone_ft's kernel (`mindone_ft.kernels.cpu`, ~2.5x faster than
            MindSpore's on a BERT update), which repeats torch's float32 operations: parameters agree with
            torch to about one rounding per step. Elsewhere, or without the CPU kernels, it is MindSpore's
            `AdamWeightDecay` with the bias correction folded into its learning rate, epsilon and decay; it
            takes `1 - beta` in float32 (torch: in float64), so updates differ by ~1e-5 relative. Default:
            fused when all parameters are float32 (both kernels support only float32).

    Calling the optimizer with a tuple of gradients (in `parameters` order) applies one update;
    `optimizer(grads, grad_scale)` multiplies the gradients by the scalar tensor `grad_scale` first (gradient
    clipping; the CPU kernel does it in the same pass). Its state
    (`exp_avg.*`, `exp_avg_sq.*`, `global_step`) is made of Parameters, so `ms.save_checkpoint(optimizer)`
    saves it; `state_dict()` / `load_state_dict()` give it as numpy.
    """

    accepts_grad_scale = True  # TrainOneStepWrapper passes the clipping coefficient instead of clipped gradients

    def __init__(
        self,
        params: Iterable[Any],
        learning_rate: Union[float, Sequence[float], np.ndarray] = 1e-3,
        betas: Tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        fused: Optional[bool] = None,
    ):
        super().__init__(auto_prefix=False)
        flat, decays = _flatten_groups(params, weight_decay)
        if not flat:
            raise ValueError("AdamW got an empty parameter list.")
        self.parameters = ParameterTuple(flat)
        self.weight_decays = tuple(decays)
        self.exp_avg = self.parameters.clone(prefix="exp_avg", init="zeros")
        self.exp_avg_sq = self.parameters.clone(prefix="exp_avg_sq", init="zeros")
        for moment in self.exp_avg + self.exp_avg_sq:  # moments stay float32 even for low-precision params
            moment.set_dtype(ms.float32)
        self.global_step = Parameter(Tensor(0, ms.int32), name="global_step", requires_grad=False)
        self.learning_rates = Tensor(np.atleast_1d(np.asarray(learning_rate, dtype=np.float32)))
        if self.learning_rates.ndim != 1 or self.learning_rates.shape[0] == 0:
            raise ValueError("`learning_rate` must be a float or a non-empty 1-D sequence of floats.")
        self.beta1, self.beta2 = float(betas[0]), float(betas[1])
        self.eps = float(eps)
        self.hyper_map = ops.HyperMap()
        all_float32 = all(p.dtype == ms.float32 for p in flat)
        if fused and not all_float32:
            raise ValueError("`fused=True` needs float32 parameters; use `fused=False` for other dtypes.")
        self.fused = all_float32 if fused is None else fused
        self.kernel_step = None
        if self.fused and compat.use_cpu_kernels():
            self.kernel_step = cpu.AdamWStepOp()
            constants = {decay: Tensor([self.beta1, self.beta2, self.eps, decay], ms.float64) for decay in set(decays)}
            self.kernel_constants = tuple(constants[decay] for decay in decays)
        elif self.fused:
            self.adam_op = ops.AdamWeightDecay()

    def get_lr(self) -> Tensor:
        """Learning rate of the next update (float32 scalar tensor)."""
        last = self.learning_rates.shape[0] - 1
        return self.learning_rates[ops.minimum(self.global_step, last)]

    def construct(self, grads: Tuple[Tensor, ...], grad_scale: Optional[Tensor] = None) -> bool:
        lr = self.get_lr()
        step = self.global_step + 1
        ops.assign(self.global_step, step)
        if self.kernel_step is not None:
            return self._kernel_step(lr, step, grads, grad_scale)
        if grad_scale is not None:
            grads = scale_all(grads, grad_scale)
        step = step.astype(ms.float32)
        bias_correction1 = 1.0 - ops.pow(self.beta1, step)
        bias_correction2_sqrt = ops.sqrt(1.0 - ops.pow(self.beta2, step))
        if self.fused:
            return self._fused_step(lr, bias_correction1, bias_correction2_sqrt, grads)
        step_size = lr / bias_correction1
        update = ops.partial(_adamw_update, lr, step_size, bias_correction2_sqrt, self.beta1, self.beta2, self.eps)
        return self.hyper_map(update, self.weight_decays, self.parameters, self.exp_avg, self.exp_avg_sq, grads)

    def _kernel_step(self, lr, step, grads, grad_scale):
        scale = ops.ones((), ms.float64) if grad_scale is None else grad_scale.reshape(()).astype(ms.float64)
        step_hyper = ops.stack([lr.astype(ms.float64), step.astype(ms.float64), scale])
        update = ops.partial(_kernel_adamw_update, self.kernel_step, step_hyper)
        return self.hyper_map(update, self.kernel_constants, self.parameters, self.exp_avg, self.exp_avg_sq, grads)

    def _fused_step(self, lr, bias_correction1, bias_correction2_sqrt, grads):
        # torch: p*(1 - lr*wd) - lr/bc1 * m / (sqrt(v)/sqrt(bc2) + eps). The fused kernel computes
        # p - lr' * (m / (sqrt(v) + eps') + wd' * p), equal with lr' = lr*sqrt(bc2)/bc1, eps' = eps*sqrt(bc2)
        # and wd' = wd*bc1/sqrt(bc2) (so that lr'*wd' = lr*wd).
        fused_lr = lr * bias_correction2_sqrt / bias_correction1
        fused_eps = self.eps * bias_correction2_sqrt
        decay_scale = bias_correction1 / bias_correction2_sqrt
        beta1 = ops.scalar_to_tensor(self.beta1, ms.float32)
        beta2 = ops.scalar_to_tensor(self.beta2, ms.float32)
        update = ops.partial(_fused_adamw_update, self.adam_op, fused_lr, beta1, beta2, fused_eps, decay_scale)
        return self.hyper_map(update, self.weight_decays, self.parameters, self.exp_avg, self.exp_avg_sq, grads)

    def state_dict(self) -> Dict[str, np.ndarray]:
        """Optimizer state as numpy arrays: `global_step`, `exp_avg.<param>`, `exp_avg_sq.<param>`."""
        state = {"global_step": self.global_step.asnumpy()}
        for moment in self.exp_avg + self.exp_avg_sq:
            state[moment.name] = moment.asnumpy()
        return state

    def load_state_dict(self, state: Dict[str, Any], strict: bool = True) -> List[str]:
        """Loads `state_dict()` output; returns the names missing from `state` (an error if `strict`)."""
        targets = {p.name: p for p in self.exp_avg + self.exp_avg_sq}
        targets["global_step"] = self.global_step
        missing = [name for name in targets if name not in state]
        if missing and strict:
            raise KeyError(f"Optimizer state is missing {len(missing)} entries, e.g. {missing[:3]}.")
        for name, param in targets.items():
            if name in state:
                param.set_data(Tensor(np.asarray(state[name]), dtype=param.dtype))
        return missing
