"""A new user's install: numba's cache stays out of the package, CI runs the README's two
commands in order, and what the README reaches after ``import gpsr`` is there."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numba
import pytest
from numba.core.dispatcher import Dispatcher

import gpsr
import gpsr.functions
import gpsr.kernels.evaluate
import gpsr.kernels.kendall

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIRS = [Path(gpsr.__file__).resolve().parent, Path(gpsr.kernels.__file__).resolve().parent]


def _cached_kernels() -> list[Dispatcher]:
    modules = (gpsr.functions, gpsr.kernels.kendall, gpsr.kernels.evaluate)
    found = [v for m in modules for v in vars(m).values() if isinstance(v, Dispatcher)]
    return [d for d in found if d._cache.__class__.__name__ != "NullCache"]


def test_every_cached_kernel_compiles_outside_the_package():
    kernels = _cached_kernels()
    assert len(kernels) >= 10, "expected gpsr's numba kernels with cache=True"
    for kernel in kernels:
        path = Path(kernel._cache._cache_path).resolve()
        assert path.is_relative_to(gpsr.numba_cache_dir().resolve()), (kernel, path)
        assert not any(path.is_relative_to(d) for d in PACKAGE_DIRS), (kernel, path)
    assert numba.config.CACHE_DIR == str(gpsr.numba_cache_dir())


SHOW = """
import json, gpsr, gpsr.kernels.kendall as k
print(json.dumps({"cache": k._merge_count._cache._cache_path, "dir": str(gpsr.numba_cache_dir()),
                  "spaces": gpsr.spaces.build_network.__name__,
                  "proxies": gpsr.proxies.default_batch.__name__}))
"""


def _fresh_import(env: dict) -> dict:
    """What a fresh interpreter sees after ``import gpsr`` under ``env``."""
    base = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    done = subprocess.run([sys.executable, "-c", SHOW], env=base | env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_the_cache_folder_is_the_users_or_numba_cache_dir(tmp_path):
    if sys.platform in ("win32", "darwin"):
        return  # the XDG rule is Linux's; NUMBA_CACHE_DIR is checked below everywhere
    seen = _fresh_import({"XDG_CACHE_HOME": str(tmp_path / "xdg")})
    assert seen["dir"] == str(tmp_path / "xdg" / "gpsr" / "numba")
    assert seen["cache"].startswith(seen["dir"] + os.sep)
    # What the README uses as gpsr.spaces / gpsr.proxies after a plain `import gpsr`.
    assert (seen["spaces"], seen["proxies"]) == ("build_network", "default_batch")
    chosen = _fresh_import({"NUMBA_CACHE_DIR": str(tmp_path / "mine")})
    assert chosen["cache"].startswith(str(tmp_path / "mine") + os.sep)


def test_ci_runs_the_readme_install_command_then_the_test_command():
    """.ci/run reads the README's first bash block; it must be the two commands, in order."""
    done = subprocess.run(["bash", str(ROOT / ".ci" / "run"), "--commands"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    first, second = done.stdout.splitlines()
    readme = (ROOT / "README.md").read_text()
    assert readme.index(first) < readme.index(second)
    assert first.startswith("pip install '.[cpu]'") and first.endswith("&& gpsr run")
    assert second.startswith("pip install -e '.[cpu,test]'") and second.endswith("&& pytest")


def test_the_cpu_extra_is_torchs_cpu_build_within_the_torch_range():
    from packaging.requirements import Requirement  # a dependency of pytest

    tomllib = pytest.importorskip("tomllib", reason="tomllib is Python 3.11+")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    (cpu,) = map(Requirement, project["optional-dependencies"]["cpu"])
    (torch,) = (r for r in map(Requirement, project["dependencies"]) if r.name == "torch")
    assert cpu.name == "torch" and cpu.marker.evaluate({"sys_platform": "linux"})
    assert not cpu.marker.evaluate({"sys_platform": "darwin"})  # macOS torch is CPU-only
    assert cpu.specifier.contains("2.13.0+cpu")
    assert not cpu.specifier.contains("2.13.0")  # the CUDA build (plain version) never
    assert torch.specifier.contains("2.13.0+cpu")
