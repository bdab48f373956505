"""Terminal calibration: a monotone map per proxy, fitted on a reference sample of a space.

Raw proxies live on scales that differ by orders of magnitude (median ``|value|`` on
NB201-CF10 from 0.06 for fisher to 1,500 for epe_nas) and that move between datasets and
computations of the same proxy (epe_nas: median 1,500 in NAS-Bench-Suite-Zero's final NB201
CIFAR-10 values, 360 in its early CIFAR-10 values, 33 in its early CIFAR-100 values). An
expression that mixes raw proxies, ``epe_nas + params``, ranks by whichever is largest, and
which one that is changes from one problem to the next: that is why a single run's formula
transfers so unevenly.

A calibrated terminal is a proxy passed through a map fitted on a reference sample of the
problem's own architectures (proxy values only, never accuracies):

* ``quantile``: the proxy's mid-rank empirical CDF on the reference, in ``[0, 1]``, linear
  between reference values. Every calibrated terminal is then uniform on every problem, so an
  expression computes the same function of the architectures' per-proxy ranks on every
  problem, whatever each proxy's scale there. Within one problem the map is strictly
  increasing over the reference's values, so a single proxy's ranking (and tau) is unchanged;
  only what mixed expressions compute changes.
* ``robust``: ``(x - median) / IQR``, the robust standardization; scale and location drop
  out, the shape (heavy tails) stays.
* ``log``: ``sign(x) log(1 + |x| / m)`` with ``m`` the median of ``|x|``: orders of
  magnitude, with the scale divided out (a proxy that is x0.25 on another dataset shifts by
  a constant where ``|x| >> m``); products and ratios of raw proxies become sums and
  differences.

Failure sentinels (-1e8) are finite and map to the bottom like any low value; -inf and +inf
map to the ends of the quantile map; NaN stays NaN (read as the protected value).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from gpsr.errors import GpsrError

CALIBRATIONS = ("none", "quantile", "robust", "log")
#: Most reference values a stored quantile map keeps per proxy (evenly spaced over the
#: distinct values, both ends included); between them the map is linear.
MAX_KNOTS = 1025


@dataclass
class Calibration:
    """Per-proxy monotone maps of one method, fitted on one reference sample.

    ``maps[proxy]`` is ``{"x": knots, "y": levels}`` for ``quantile`` and
    ``{"center": c, "scale": s}`` for ``robust``, ``{"scale": m}`` for ``log``.
    """

    method: str
    maps: dict[str, dict]

    @classmethod
    def fit(cls, method: str, values: np.ndarray, proxies: Sequence[str], where: str = "",
            max_knots: int = MAX_KNOTS) -> Calibration:
        """Maps of ``method`` for each column of ``values`` (rows: reference architectures)."""
        check_method(method)
        values = np.asarray(values, dtype=np.float64).reshape(-1, len(proxies))
        maps = {}
        for j, proxy in enumerate(proxies):
            column = values[:, j]
            reference = column[np.isfinite(column)]
            if len(reference) == 0:
                raise GpsrError(f"{where or 'reference'}: proxy {proxy!r} has no finite value "
                                "to calibrate on")
            maps[proxy] = (_quantile_map(reference, max_knots) if method == "quantile"
                           else _robust_map(reference) if method == "robust"
                           else {"scale": _positive(np.median(np.abs(reference)),
                                                    np.mean(np.abs(reference)))})
        return cls(method, maps)

    def apply(self, values: np.ndarray, proxies: Sequence[str]) -> np.ndarray:
        """``values`` (columns in ``proxies`` order) through the maps; a new float64 array."""
        values = np.asarray(values, dtype=np.float64)
        out = np.empty_like(values)
        for j, proxy in enumerate(proxies):
            if proxy not in self.maps:
                raise GpsrError(f"no {self.method} calibration for proxy {proxy!r} "
                                f"(calibrated: {', '.join(self.maps)})")
            out[..., j] = apply_map(self.method, self.maps[proxy], values[..., j])
        return out

    def to_dict(self) -> dict:
        return {"method": self.method, "maps": self.maps}

    @classmethod
    def from_dict(cls, data: dict, where: str = "calibration") -> Calibration:
        if not isinstance(data, dict) or not isinstance(data.get("maps"), dict):
            raise GpsrError(f"{where}: expected {{method, maps}}")
        check_method(data.get("method"))
        keys = {"quantile": ("x", "y"), "robust": ("center", "scale"),
                "log": ("scale",)}[data["method"]]
        for proxy, m in data["maps"].items():
            if not isinstance(m, dict) or any(k not in m for k in keys):
                raise GpsrError(f"{where}: map of {proxy!r} lacks {' or '.join(keys)}")
        return cls(data["method"], data["maps"])


def check_method(method: object) -> None:
    if method not in CALIBRATIONS:
        raise GpsrError(f"unknown calibration {method!r} (use {', '.join(CALIBRATIONS)})")


def apply_map(method: str, m: dict, x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if method == "quantile":
        knots = np.asarray(m["x"], dtype=np.float64)
        out = np.interp(np.nan_to_num(x, nan=0.0), knots, np.asarray(m["y"], dtype=np.float64))
        return np.where(np.isnan(x), np.nan, out)
    with np.errstate(all="ignore"):
        if method == "log":
            return np.sign(x) * np.log1p(np.abs(x) / m["scale"])
        return (x - m["center"]) / m["scale"]


def _quantile_map(reference: np.ndarray, max_knots: int) -> dict:
    """Mid-rank ECDF at each distinct reference value: ``(#below + #equal / 2) / n``."""
    distinct, counts = np.unique(reference, return_counts=True)
    below = np.concatenate([[0], np.cumsum(counts)[:-1]])
    levels = (below + counts / 2) / len(reference)
    if len(distinct) > max_knots:
        keep = np.unique(np.linspace(0, len(distinct) - 1, max_knots).round().astype(np.int64))
        distinct, levels = distinct[keep], levels[keep]
    return {"x": distinct.tolist(), "y": levels.tolist()}


def _robust_map(reference: np.ndarray) -> dict:
    """Median and interquartile range; where the IQR is 0, the mean absolute deviation from
    the median, else 1 (a constant proxy stays constant)."""
    center = float(np.median(reference))
    q25, q75 = np.percentile(reference, [25, 75])
    return {"center": center,
            "scale": _positive(q75 - q25, np.mean(np.abs(reference - center)))}


def _positive(*candidates: float) -> float:
    """The first finite positive scale among ``candidates``, else 1."""
    for c in candidates:
        if np.isfinite(c) and c > 0:
            return float(c)
    return 1.0
