"""Where numba keeps gpsr's compiled kernels: a per-user cache folder, never the package.

numba's default (``cache=True``) writes beside the source, into ``__pycache__`` of the
installed package. pip does not know those files, so ``pip uninstall`` (and an editable
reinstall over a regular one) leaves ``site-packages/gpsr/`` behind as an empty namespace
folder that shadows the real package (``cannot import name '__version__' from 'gpsr'``).

The folder is ``$NUMBA_CACHE_DIR`` when set, else the platform's user cache folder
(the layout of the ``platformdirs`` package): ``$XDG_CACHE_HOME/gpsr/numba`` (default
``~/.cache/gpsr/numba``) on Linux, ``~/Library/Caches/gpsr/numba`` on macOS and
``%LOCALAPPDATA%\\gpsr\\Cache\\numba`` on Windows. Deleting it only costs one recompilation.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def user_cache_dir() -> Path:
    """gpsr's per-user cache folder on this platform (not created)."""
    home = Path.home()
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA") or home / "AppData" / "Local") / "gpsr" / "Cache"
    if sys.platform == "darwin":
        return home / "Library" / "Caches" / "gpsr"
    return Path(os.environ.get("XDG_CACHE_HOME") or home / ".cache") / "gpsr"


def numba_cache_dir() -> Path:
    """The folder numba compiles gpsr's kernels into."""
    return Path(os.environ.get("NUMBA_CACHE_DIR") or user_cache_dir() / "numba")


def use_user_cache() -> None:
    """Point numba's cache at :func:`numba_cache_dir`; must run before any kernel is defined,
    since numba fixes a function's cache folder when it decorates it.

    Set in numba's settings rather than the environment, so that gpsr does not change what
    child processes of the caller see; gpsr's own workers import gpsr and so do the same."""
    import numba

    numba.config.CACHE_DIR = str(numba_cache_dir())


# On import: gpsr/__init__.py imports this module before any module that defines a kernel.
use_user_cache()
