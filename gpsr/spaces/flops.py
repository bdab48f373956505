"""FLOPs and parameter counts under the convention of the NAS-Bench-Suite-Zero tables.

NASLib (``zerocost`` branch, ``naslib/predictors/utils/pruners/predictive.py``) computes its
``flops`` and ``params`` proxies with ``tensorwatch.ModelStats`` on a single input image;
tensorwatch uses the torchstat counting rules
(``tensorwatch/model_graph/torchstat/compute_flops.py``). Those rules, restated:

* ``Conv2d``: ``k_h * k_w * C_in * C_out / groups`` multiply-accumulates per output
  position, plus ``C_out`` per position when there is a bias;
* ``Linear``: ``in_features * out_features`` (the bias is not counted);
* ``BatchNorm2d``: one per input element, two when affine;
* ``ReLU``-family activations: one per input element;
* ``AvgPool2d`` / ``MaxPool2d``: ``k_h * k_w`` per output element;
* ``AdaptiveAvgPool2d`` / ``AdaptiveMaxPool2d``: ``(h + 1) * (w + 1)`` per output element
  and channel, where ``h x w`` is the pooling window (torchstat's formula adds the 1);
* anything else: 0. Only leaf modules are hooked, and the network runs in eval mode.

On NAS-Bench-201 these rules reproduce the benchmark's ``flops`` column exactly
(see ``results/spaces-params-check.md``). The one deliberate departure: a leaf module
called several times in a forward pass is counted for every call here, whereas torchstat
keeps only the last call; none of the networks in :mod:`gpsr.spaces` reuses a module.
"""

from __future__ import annotations

import torch
from torch import nn

_ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.PReLU, nn.ELU, nn.LeakyReLU)


def _pair(v: int | tuple[int, ...]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[-1]))


def _adaptive_window_sum(in_size: int, out_size: int) -> int:
    """Sum over output positions of (window length + 1), torchstat's adaptive-pool count."""
    total = 0
    for i in range(out_size):
        start = (i * in_size) // out_size
        end = -((-(i + 1) * in_size) // out_size)
        total += end - start + 1
    return total


def _module_flops(module: nn.Module, inp: torch.Tensor, out: torch.Tensor) -> int:
    if isinstance(module, nn.Conv2d):
        k_h, k_w = module.kernel_size
        positions = out.shape[0] * out.shape[2] * out.shape[3]
        flops = k_h * k_w * inp.shape[1] * (out.shape[1] // module.groups) * positions
        if module.bias is not None:
            flops += out.shape[1] * positions
        return flops
    if isinstance(module, nn.Linear):
        return inp.shape[0] * module.in_features * module.out_features
    if isinstance(module, nn.BatchNorm2d):
        return inp.numel() * (2 if module.affine else 1)
    if isinstance(module, _ACTIVATIONS):
        return inp.numel()
    if isinstance(module, (nn.AvgPool2d, nn.MaxPool2d)):
        k_h, k_w = _pair(module.kernel_size)
        return out.numel() * k_h * k_w
    if isinstance(module, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
        n, c, h, w = inp.shape
        return n * c * _adaptive_window_sum(h, out.shape[2]) * _adaptive_window_sum(w, out.shape[3])
    return 0


def _first_tensor(x: object) -> torch.Tensor | None:
    if isinstance(x, torch.Tensor):
        return x
    if isinstance(x, (list, tuple)):
        for item in x:
            found = _first_tensor(item)
            if found is not None:
                return found
    return None


def _leaves(net: nn.Module) -> list[nn.Module]:
    return [m for m in net.modules() if not any(True for _ in m.children())]


def _forward_with_leaf_hook(net: nn.Module, input_shape: tuple[int, ...], hook) -> None:
    """One eval-mode forward on zeros with ``hook`` on every leaf module; the network's
    mode is restored and the hooks removed afterwards."""
    handles = [m.register_forward_hook(hook) for m in _leaves(net)]
    was_training = net.training
    device = next((p.device for p in net.parameters()), torch.device("cpu"))
    try:
        net.eval()
        with torch.no_grad():
            net(torch.zeros(input_shape, device=device))
    finally:
        for handle in handles:
            handle.remove()
        net.train(was_training)


def count_flops(net: nn.Module, input_shape: tuple[int, ...] = (1, 3, 32, 32)) -> float:
    """FLOPs of one forward pass, in millions, counted as NASLib/tensorwatch did.

    ``input_shape`` includes the batch dimension; the benchmark tables use a batch of 1.
    The network is run once in eval mode on zeros and restored to its previous mode.
    """
    total = 0

    def hook(module: nn.Module, inputs: tuple, output: object) -> None:
        nonlocal total
        inp, out = _first_tensor(inputs), _first_tensor(output)
        if inp is not None and out is not None:
            total += _module_flops(module, inp, out)

    _forward_with_leaf_hook(net, input_shape, hook)
    return total / 1e6


def count_params(net: nn.Module) -> float:
    """Number of parameters, in millions (the unit of the benchmark's ``params`` column)."""
    return sum(p.numel() for p in net.parameters()) / 1e6


def count_params_called(net: nn.Module, input_shape: tuple[int, ...] = (1, 3, 32, 32)) -> float:
    """Parameters, in millions, of the leaf modules that one eval-mode forward pass calls.

    This is what tensorwatch's ``ModelStats.parameters`` (NASLib's ``params`` proxy) sums:
    modules that exist but are not executed in eval mode, such as an auxiliary head,
    are left out.
    """
    called: set[int] = set()

    def hook(module: nn.Module, inputs: tuple, output: object) -> None:
        called.add(id(module))

    _forward_with_leaf_hook(net, input_shape, hook)
    total = sum(p.numel() for m in _leaves(net) if id(m) in called
                for p in m.parameters(recurse=False))
    return total / 1e6
