"""Live zero-cost proxies: the 16 hand-crafted proxies computed on a PyTorch network and a
real minibatch, fused into shared passes (:func:`compute_proxies`)."""

from gpsr.proxies.inputs import (
    BATCH_SIZE,
    NORMALISATION,
    as_batch,
    batch_from_npz,
    check_batch,
    default_batch,
    normalise,
)
from gpsr.proxies.registry import (
    FAILURE,
    PROXIES,
    ProxyContext,
    compute_proxies,
    register_proxy,
)

# Registers the built-in proxies; must follow the registry import.
from gpsr.proxies.measures import regularised_swap  # noqa: E402  isort: skip

__all__ = [
    "BATCH_SIZE",
    "FAILURE",
    "NORMALISATION",
    "PROXIES",
    "ProxyContext",
    "as_batch",
    "batch_from_npz",
    "check_batch",
    "compute_proxies",
    "default_batch",
    "normalise",
    "register_proxy",
    "regularised_swap",
]
