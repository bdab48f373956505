"""Real minibatches for the data-dependent proxies.

Images are normalised with the per-channel mean/std of their dataset (the constants NASLib and
NAS-Bench-201 use) and returned as float32 NCHW tensors with int64 labels. The shared CIFAR-10
sample (``<shared>/data/images/cifar10-sample.npz``: 297 CIFAR-10 *test* images, uint8 NHWC,
see its SOURCES.md) is the default source. NAS-Bench-Suite-Zero drew its batches from the
training split with random-crop/flip augmentation; a test-split sample without augmentation is
the closest real data available here.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from gpsr.data import shared_dir
from gpsr.errors import GpsrError

#: (mean, std) per dataset, as in NASLib's ``get_train_val_loaders`` and NAS-Bench-201.
NORMALISATION: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "cifar10": ((0.49139968, 0.48215827, 0.44653124), (0.24703233, 0.24348505, 0.26158768)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    "imagenet16-120": (
        (122.68 / 255, 116.66 / 255, 104.01 / 255),
        (63.22 / 255, 61.26 / 255, 65.09 / 255),
    ),
}
#: NAS-Bench-Suite-Zero's batch size (its released nwot values, a log-determinant of a
#: batch x batch kernel, match 64 and not NASLib's default of 32).
BATCH_SIZE = 64


def _dataset_of(path: Path) -> str:
    stem = path.name.lower()
    if stem.startswith("cifar100"):
        return "cifar100"
    if stem.startswith("imagenet16"):
        return "imagenet16-120"
    return "cifar10"


def normalise(images: np.ndarray | Tensor, dataset: str = "cifar10") -> Tensor:
    """uint8 images (NHWC, or NCHW when the last axis is not 1 or 3) to normalised float NCHW."""
    if dataset not in NORMALISATION:
        raise GpsrError(f"no normalisation for dataset {dataset!r}; known: {sorted(NORMALISATION)}")
    x = torch.as_tensor(np.asarray(images))
    if x.dtype != torch.uint8 or x.dim() != 4:
        raise GpsrError(f"expected uint8 images of 4 dims, got {x.dtype} of shape {tuple(x.shape)}")
    if x.shape[-1] in (1, 3):
        x = x.permute(0, 3, 1, 2)
    mean, std = (
        torch.tensor(v, dtype=torch.float32).view(1, -1, 1, 1) for v in NORMALISATION[dataset]
    )
    if x.shape[1] != mean.shape[1]:
        raise GpsrError(f"{dataset} images need {mean.shape[1]} channels, got {x.shape[1]}")
    return ((x.to(torch.float32) / 255.0 - mean) / std).contiguous()


def check_batch(batch: object) -> tuple[Tensor, Tensor]:
    """Validate ``(images, labels)``: float NCHW images with at least 2 samples, finite, and
    integer labels, one per image. Raises :class:`GpsrError` with a one-line reason."""
    hint = "; gpsr.proxies.as_batch converts arrays, uint8 images and datasets"
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        raise GpsrError(f"a batch is a pair (images, labels), got {type(batch).__name__}{hint}")
    images, labels = batch
    if not isinstance(images, Tensor) or not isinstance(labels, Tensor):
        raise GpsrError(
            f"batch must hold torch tensors, got ({type(images).__name__}, "
            f"{type(labels).__name__}){hint}"
        )
    if images.dim() != 4:
        raise GpsrError(f"images must be NCHW (4 dims), got shape {tuple(images.shape)}{hint}")
    if not images.is_floating_point():
        raise GpsrError(f"images must be normalised floats, got {images.dtype}{hint}")
    if images.shape[-1] in (1, 3) and images.shape[1] not in (1, 3):
        raise GpsrError(f"images of shape {tuple(images.shape)} look NHWC; proxies need NCHW")
    if images.shape[0] < 2:
        raise GpsrError(f"a batch needs at least 2 images, got {images.shape[0]}")
    if not bool(torch.isfinite(images).all()):
        raise GpsrError("images contain NaN or inf")
    if (
        labels.dim() != 1
        or labels.dtype in (torch.bool,)
        or labels.is_floating_point()
        or labels.is_complex()
    ):
        raise GpsrError(
            f"labels must be a 1-D integer tensor, got {labels.dtype} of shape "
            f"{tuple(labels.shape)}"
        )
    if labels.shape[0] != images.shape[0]:
        raise GpsrError(f"{images.shape[0]} images but {labels.shape[0]} labels")
    if int(labels.min()) < 0:
        raise GpsrError(f"labels must be class indices >= 0, got {int(labels.min())}")
    return images, labels.to(torch.int64)


def batch_from_npz(
    path: str | Path, size: int = BATCH_SIZE, seed: int = 0, dataset: str | None = None
) -> tuple[Tensor, Tensor]:
    """``size`` images drawn without replacement (``numpy`` generator ``seed``) from an npz
    with uint8 NHWC ``images`` and ``labels``; ``dataset`` (default: from the file name) picks
    the normalisation."""
    path = Path(path)
    if not path.is_file():
        raise GpsrError(f"{path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as archive:
            names = archive.files
            arrays = {k: archive[k] for k in ("images", "labels") if k in names}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        # np.load raises ValueError for pickled data and object arrays (never unpickled here)
        raise GpsrError(f"{path}: not an .npz of plain arrays ({str(exc).split('.')[0]})") from None
    if len(arrays) < 2:
        raise GpsrError(f"{path}: needs arrays 'images' and 'labels', has {names}")
    images, labels = arrays["images"], arrays["labels"]
    if images.ndim == 0 or labels.ndim != 1 or len(labels) != len(images):
        raise GpsrError(f"{path}: needs one label per image, has images of shape "
                        f"{images.shape} and labels of shape {labels.shape}")
    if not 2 <= size <= len(images):
        raise GpsrError(f"{path}: cannot draw a batch of {size} images from {len(images)} "
                        f"(a batch holds 2 to {len(images)})")
    pick = np.random.default_rng(seed).choice(len(images), size=size, replace=False)
    return normalise(images[pick], dataset or _dataset_of(path)), torch.as_tensor(
        labels[pick], dtype=torch.int64
    )


def default_batch(size: int = BATCH_SIZE, seed: int = 0) -> tuple[Tensor, Tensor] | None:
    """A batch from the shared CIFAR-10 sample, or None when the shared data is absent."""
    root = shared_dir()
    if root is None:
        return None
    path = root / "data" / "images" / "cifar10-sample.npz"
    return batch_from_npz(path, size, seed) if path.is_file() else None


def _image_tensor(image: object, dataset: str) -> Tensor:
    if isinstance(image, Tensor) and image.is_floating_point():
        return image
    array = np.asarray(image)
    if array.dtype != np.uint8:
        raise GpsrError(f"dataset items must be float tensors or uint8 images, got {array.dtype}")
    if array.ndim == 2:
        array = array[:, :, None]
    return normalise(array[None], dataset)[0]


def as_batch(
    source: object, size: int = BATCH_SIZE, seed: int = 0, dataset: str = "cifar10"
) -> tuple[Tensor, Tensor]:
    """A validated batch from an npz path, an ``(images, labels)`` pair of tensors or arrays
    (uint8 images are normalised), or a torchvision-style dataset yielding ``(image, label)``
    (indexable ones are sampled with ``seed``, others read in order)."""
    if isinstance(source, (str, Path)):
        return batch_from_npz(source, size, seed, None if dataset == "cifar10" else dataset)
    if (
        isinstance(source, (tuple, list))
        and len(source) == 2
        and isinstance(source[0], (Tensor, np.ndarray))
    ):
        images, labels = source
        images = torch.as_tensor(np.asarray(images)) if not isinstance(images, Tensor) else images
        if images.dtype == torch.uint8:
            images = normalise(images, dataset)
        return check_batch((images, torch.as_tensor(np.asarray(labels))))
    if hasattr(source, "__len__") and hasattr(source, "__getitem__"):
        if len(source) < size:
            raise GpsrError(f"dataset has {len(source)} items, fewer than the {size} asked for")
        pick = np.random.default_rng(seed).choice(len(source), size=size, replace=False)
        items = [source[int(i)] for i in pick]
    elif hasattr(source, "__iter__"):
        items = []
        for item in source:
            items.append(item)
            if len(items) == size:
                break
        if len(items) < size:
            raise GpsrError(f"dataset yielded {len(items)} items, fewer than the {size} asked for")
    else:
        raise GpsrError(f"cannot make a batch from {type(source).__name__}")
    images = torch.stack([_image_tensor(image, dataset) for image, _ in items])
    labels = torch.as_tensor([int(label) for _, label in items], dtype=torch.int64)
    return check_batch((images, labels))
