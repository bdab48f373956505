"""Every python and shell block of README.md runs as written, on small budgets.

Blocks run in README order, each as a new process (shell blocks with bash, python blocks as a
file of their own), in one scratch folder whose sibling ``shared`` is the shared data, so
``../shared/...`` resolves as it does beside a checkout, and a block may read what an earlier
one wrote (``runs/paper/result.json``). The one change made to a block is its budget: the
option values in ``BUDGET`` are rewritten (``--runs 31`` becomes ``--runs 2``); a new block
needing a smaller budget adds a rule there. A block that cannot run here (installs, needs a
GPU or a Ray cluster) carries, on the line before its fence, a marker with a reason::

    <!-- readme-test: skip: REASON -->

and shows as a skip with that reason. The one other block left out is the README's first, the
two install commands, which .ci/run runs in a fresh virtual environment. Every fence
must name its language, so that no shell or python block escapes by having none.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from gpsr.data import shared_dir

README = Path(__file__).resolve().parents[1] / "README.md"
SHELL = {"bash", "sh", "shell", "console"}
PYTHON = {"python", "py"}
NOT_RUN = {"text", "json", "toml", "yaml", "latex", "markdown"}
SKIP = re.compile(r"<!--\s*readme-test:\s*skip:\s*(?P<reason>.+?)\s*-->")
#: Small budgets: (pattern, replacement), applied to every runnable block.
BUDGET = [
    (r"\bgpsr run\b", "gpsr run --generations 2"),  # a later --generations N wins: also shrunk
    (r"\bgpsr bench-throughput\b", "gpsr bench-throughput --repeats 1"),
    (r"--runs\s+\d+", "--runs 2"),
    (r"--generations\s+\d+", "--generations 2"),
    (r"--archs\s+\d+", "--archs 2"),
    (r"--epochs\s+\d+", "--epochs 1"),
    (r"--repeats\s+\d+", "--repeats 1"),
    # No worker processes in shell blocks (each imports torch); the Python API block keeps
    # its jobs=2, the reason for its __main__ guard.
    (r"--jobs\s+\d+", "--jobs 1"),
    (r"\bruns=\d+", "runs=2"),
    (r"\bgenerations=\d+", "generations=2"),
    (r"\bSearchConfig\((?![^)]*generations=)", "SearchConfig(generations=2, "),
    # Live proxies on 8 images instead of 64 (a later --batch-size N wins: also shrunk).
    (r"\bgpsr (score|proxies-table|proxies)(?=\s)", r"gpsr \1 --batch-size 8"),
    (r"--batch-size\s+\d+", "--batch-size 8"),
    (r"\bdefault_batch\(\)", "default_batch(8)"),
    # Architecture searches: a few evaluations of a small population.
    (r"--evaluations\s+\d+", "--evaluations 4"),
    (r"--population\s+\d+", "--population 2"),
    (r"--sample-size\s+\d+", "--sample-size 2"),
    (r"\bmax_evaluations=\d+", "max_evaluations=6"),
    (r"\bpopulation_size=\d+", "population_size=3"),
    (r"\bsample_size=\d+", "sample_size=2"),
]
#: Per block, seconds: far above its time on CI's 2 cores, for a machine busy with other work.
TIMEOUT = 600


@dataclass
class Block:
    line: int  # of the opening fence, 1-based
    language: str
    code: str
    skip: str | None

    @property
    def id(self) -> str:
        return f"README.md:{self.line}-{self.language}"


def readme_blocks(text: str) -> list[Block]:
    """The fenced blocks of a markdown text, with the skip marker of the line before each."""
    blocks, lines = [], text.splitlines()
    k = 0
    while k < len(lines):
        fence = re.match(r"^```(\S*)\s*$", lines[k])
        if not fence:
            k += 1
            continue
        end = next((j for j in range(k + 1, len(lines)) if lines[j].startswith("```")), None)
        if end is None:
            raise ValueError(f"README.md:{k + 1}: fence never closed")
        marker = SKIP.search(lines[k - 1]) if k else None
        blocks.append(Block(k + 1, fence.group(1), "\n".join(lines[k + 1:end]) + "\n",
                            marker.group("reason") if marker else None))
        k = end + 1
    return blocks


def shrink(code: str) -> str:
    for pattern, replacement in BUDGET:
        code = re.sub(pattern, replacement, code)
    return code


BLOCKS = readme_blocks(README.read_text())
RUNNABLE = [b for b in BLOCKS if b.language in SHELL | PYTHON]


def test_every_block_names_a_known_language():
    unknown = [b.id for b in BLOCKS if b.language not in SHELL | PYTHON | NOT_RUN]
    assert not unknown, f"fences without a known language (give one): {unknown}"


def test_the_parser_reads_markers_and_budgets():
    text = ("```bash\necho a\n```\n<!-- readme-test: skip: needs a GPU -->\n"
            "```python\nprint(1)\n```\n")
    first, second = readme_blocks(text)
    assert (first.line, first.language, first.code, first.skip) == (1, "bash", "echo a\n", None)
    assert (second.line, second.language, second.skip) == (5, "python", "needs a GPU")
    assert shrink("gpsr bench build --archs 200 --jobs 2") == "gpsr bench build --archs 2 --jobs 1"
    assert shrink("synthesize(d, c, runs=4)") == "synthesize(d, c, runs=2)"
    assert shrink("gpsr proxies --space nb201") == "gpsr proxies --batch-size 8 --space nb201"
    assert shrink("gpsr proxies-table --out t") == "gpsr proxies-table --batch-size 8 --out t"
    assert shrink("batch = gpsr.proxies.default_batch()") == \
        "batch = gpsr.proxies.default_batch(8)"
    assert shrink("gpsr run --out x --generations 50") == \
        "gpsr run --generations 2 --out x --generations 2"


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> dict:
    """A scratch folder beside a ``shared`` link, and what earlier blocks left behind."""
    root = tmp_path_factory.mktemp("readme")
    work = root / "checkout"
    work.mkdir()
    shared = shared_dir()
    if shared is not None:
        (root / "shared").symlink_to(shared.resolve(), target_is_directory=True)
    return {"work": work, "shared": shared, "skipped_for_shared": None}


@pytest.mark.parametrize("block", RUNNABLE, ids=[b.id for b in RUNNABLE])
def test_readme_block_runs(block: Block, checkout: dict):
    if block.skip:
        pytest.skip(f"{block.id}: {block.skip}")
    if block is BLOCKS[0]:
        pytest.skip(f"{block.id}: the install commands; .ci/run runs them in a fresh venv")
    bin_dir = Path(sys.executable).parent
    if block.language in SHELL and not (bin_dir / "gpsr").exists():
        pytest.skip(f"no gpsr command beside {sys.executable}: install gpsr (README, first "
                    "block)")
    if checkout["shared"] is None and "../shared" in block.code:
        checkout["skipped_for_shared"] = block.id
    if checkout["skipped_for_shared"]:
        pytest.skip(f"no shared data (set GPSR_SHARED): {checkout['skipped_for_shared']} reads "
                    "it, and later blocks may read what it writes")
    work: Path = checkout["work"]
    env = os.environ | {"PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
                        "COLUMNS": "80"}
    if checkout["shared"] is not None:
        env["GPSR_SHARED"] = str(checkout["shared"])
    code = shrink(block.code)
    if block.language in PYTHON:
        script = work / f"readme_block_{block.line}.py"
        script.write_text(code)
        command = [sys.executable, script.name]
    else:
        command = ["bash", "-euo", "pipefail", "-c", code]
    done = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True,
                          timeout=TIMEOUT, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, (
        f"{block.id} failed (exit {done.returncode}) as run with budgets shrunk:\n{code}\n"
        f"--- stdout\n{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-3000:]}"
    )
    assert "Traceback" not in done.stderr, f"{block.id} printed a traceback:\n{done.stderr}"
