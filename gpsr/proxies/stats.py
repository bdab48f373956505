"""FLOP and parameter counts with the conventions of NAS-Bench-Suite-Zero's flops and params.

NASLib (``naslib/predictors/utils/pruners/predictive.py``, branch ``zerocost``) reports
``flops`` and ``params`` from tensorwatch's ``ModelStats``, which is torchstat's analyser
(``tensorwatch/model_graph/torchstat/compute_flops.py``) run on one input of batch size 1,
divided by 1e6. Its conventions, reproduced here because they define the released values
(checked by hand: they give exactly 19.248832 MFLOPs and 0.129306 M params for the NB201 cell
``|avg_pool_3x3~0|+|skip_connect~0|none~1|+|nor_conv_1x1~0|avg_pool_3x3~1|nor_conv_1x1~2|``):

* only leaf modules (no children) that the forward pass calls are counted; a module called
  several times counts its *last* call (torchstat overwrites instead of accumulating);
* params: the leaf module's own parameters;
* Conv2d: ``k_h*k_w*in_c*(out_c//groups)`` per output position (+ ``out_c`` per position with a
  bias); BatchNorm2d: input elements, twice if affine; ReLU/ReLU6/PReLU/ELU/LeakyReLU: input
  elements; Avg/MaxPool2d: ``k*k`` per output element (torchstat's own output-size formula);
  AdaptiveAvg/MaxPool2d: ``(y_end-y_start+1)*(x_end-x_start+1)`` per output element per plane;
  Linear: ``in*out`` (no bias term); Upsample: ``N*H_out*W_out`` (torchstat drops the channel
  count); every other module: 0.

All counts are proportional to the batch size, so a counter run on any batch divides exactly
back to the batch-1 figure.
"""

from __future__ import annotations

import math

from torch import Tensor, nn

_RELUS = (nn.ReLU, nn.ReLU6, nn.PReLU, nn.ELU, nn.LeakyReLU)


def _pair(value: int | tuple[int, ...]) -> tuple[int, int]:
    if isinstance(value, int):
        return value, value
    return int(value[0]), int(value[1])


def leaf_flops(module: nn.Module, inp: Tensor, out: Tensor) -> int:
    """torchstat's FLOP count of one call of ``module`` on the whole batch ``inp``."""
    if isinstance(module, nn.Conv2d):
        k_h, k_w = module.kernel_size
        n, out_c, out_h, out_w = out.shape
        positions = n * out_h * out_w
        flops = k_h * k_w * inp.shape[1] * (out_c // module.groups) * positions
        return flops + (out_c * positions if module.bias is not None else 0)
    if isinstance(module, nn.BatchNorm2d):
        return inp.numel() * (2 if module.affine else 1)
    if isinstance(module, (nn.AvgPool2d, nn.MaxPool2d)):
        k, s, p = _pair(module.kernel_size), _pair(module.stride), _pair(module.padding)
        n, c, h, w = inp.shape
        # torchstat's formula, stride[0] for both axes included, not the real output size.
        out_w = math.floor((w + 2 * p[0] - k[0]) / float(s[0]) + 1)
        out_h = math.floor((h + 2 * p[1] - k[1]) / float(s[0]) + 1)
        return n * c * out_w * out_h * k[0] * k[1]
    if isinstance(module, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
        n, c, h, w = inp.shape
        oh, ow = out.shape[2], out.shape[3]
        total = 0
        for i in range(oh):
            y0, y1 = math.floor(i * h / oh), math.ceil((i + 1) * h / oh)
            for j in range(ow):
                x0, x1 = math.floor(j * w / ow), math.ceil((j + 1) * w / ow)
                total += n * c * (y1 - y0 + 1) * (x1 - x0 + 1)
        return total
    if isinstance(module, _RELUS):
        return inp.numel()
    if isinstance(module, nn.Upsample):
        return out.shape[0] * math.prod(out.shape[2:])
    if isinstance(module, nn.Linear):
        return inp.shape[0] * module.in_features * module.out_features
    return 0


class ModuleStats:
    """Forward hooks on every leaf module that record torchstat's counts for one forward pass."""

    def __init__(self, net: nn.Module) -> None:
        self._flops: dict[nn.Module, int] = {}
        self._batch = 0
        self._handles = [
            m.register_forward_hook(self._hook)
            for m in net.modules()
            if next(m.children(), None) is None
        ]

    def _hook(self, module: nn.Module, inputs: tuple, output: object) -> None:
        inp = inputs[0] if inputs and isinstance(inputs[0], Tensor) else None
        out = output if isinstance(output, Tensor) else None
        flops = leaf_flops(module, inp, out) if inp is not None and out is not None else 0
        self._flops[module] = int(flops)
        if inp is not None:
            self._batch = inp.shape[0]

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()

    def flops_per_sample(self) -> int:
        total = sum(self._flops.values())
        if self._batch == 0:
            return total
        return total // self._batch

    def params(self) -> int:
        return sum(p.numel() for m in self._flops for p in m._parameters.values() if p is not None)
