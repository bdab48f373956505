"""``gpsr report`` from a tiny run on the shipped benchmark, the insight experiment, and the page
in headless Chromium."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

import gpsr
from gpsr.cli.app import app
from gpsr.errors import GpsrError
from gpsr.insight import ablation, remove_proxy, replace_proxy
from gpsr.minibench import shipped_problems
from gpsr.report import build_report, load_run, read_methods, render_html, write_report

PROBLEMS = "MINI201-DIGITS-ROTATION,MINIMICRO-DIGITS-CLASS"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def invoke(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tiny") / "tiny-run"
    res = invoke("run", "--problems", PROBLEMS, "--population", "12", "--generations", "3",
                 "--runs", "3", "--max-depth", "5", "--device", "cpu", "--out", out)
    assert res.exit_code == 0, res.output
    return out


@pytest.fixture(scope="module")
def methods_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("methods") / "methods.json"
    path.write_text(json.dumps({
        "problems": PROBLEMS.split(","), "split": "test", "gpsr_commit": "abc1234",
        "seeds": [0, 1, 2],
        "methods": [{"name": "peer-method", "follows": "someone (2024)",
                     "taus": {"test": {"MINI201-DIGITS-ROTATION": 0.987,
                                       "MINIMICRO-DIGITS-CLASS": None}},
                     "seconds": 12.5, "expression": "snip + flops"}],
        "leave_one_out": {"peer-method": {"MINI201-DIGITS-ROTATION": 0.123}},
    }))
    return path


@pytest.fixture(scope="module")
def report_dir(run_dir, methods_file, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report") / "page"
    res = invoke("report", run_dir, "--out", out, "--methods", methods_file, "--device", "cpu")
    assert res.exit_code == 0, res.output
    return out


# ---- insight ---------------------------------------------------------------------------------
@pytest.mark.parametrize("text, proxy, expected", [
    ("snip - jacov", "jacov", "snip"),
    ("flops / neg(jacov)", "jacov", "flops"),
    ("log(jacov) * (snip + jacov)", "jacov", "snip"),
    ("sqrt(snip * flops) - log(flops)", "flops", "sqrt(snip)"),
    ("snip * flops", "zen", "snip * flops"),
])
def test_removal_cuts_the_subtree_and_its_operator(text, proxy, expected):
    assert remove_proxy(gpsr.parse(text), proxy).infix() == expected


def test_removing_the_only_proxy_leaves_nothing():
    assert remove_proxy(gpsr.parse("log(neg(jacov)) / jacov"), "jacov") is None


def test_replacement_changes_every_leaf():
    assert replace_proxy(gpsr.parse("jacov / (snip - jacov)"), "jacov", "zen").infix() == \
        "zen / (snip - zen)"


def test_ablation_scores_each_variant_like_evaluate():
    dataset = gpsr.build_dataset(shipped_problems(PROBLEMS.split(",")))
    expr = gpsr.parse("log(flops) * snip - jacov")
    found = ablation(expr, dataset, "test", device="cpu")
    assert found["taus"] == gpsr.evaluate(expr, dataset, "cpu")["test"]
    assert set(found["removed"]) == {"flops", "snip", "jacov"}
    removed = found["removed"]["jacov"]
    assert removed["expression"] == "log(flops) * snip"
    assert removed["taus"] == gpsr.evaluate(gpsr.parse(removed["expression"]), dataset,
                                            "cpu")["test"]
    swapped = found["replaced"]["snip"]["zen"]
    assert swapped["expression"] == "log(flops) * zen - jacov"
    assert swapped["taus"] == gpsr.evaluate(gpsr.parse(swapped["expression"]), dataset,
                                            "cpu")["test"]
    assert len(found["replaced"]["snip"]) == len(dataset.proxies) - 1
    with pytest.raises(GpsrError, match="unknown replacement proxy 'nope'"):
        ablation(expr, dataset, replacements=["nope"])


# ---- the report ------------------------------------------------------------------------------
def test_reloaded_data_gives_the_runs_taus(run_dir):
    run = load_run(run_dir)
    assert run.notes == [] and run.dataset is not None
    again = gpsr.evaluate(run.expression, run.dataset, "cpu")
    for split in ("input", "test", "all"):
        assert again[split] == pytest.approx(run.result["taus"][split], abs=1e-12)
    assert run.result["gpsr_commit"] is None or re.fullmatch(r"[0-9a-f]+(-dirty)?",
                                                             run.result["gpsr_commit"])


def test_report_renders_from_a_tiny_run(report_dir, run_dir):
    markdown = (report_dir / "report.md").read_text()
    pictures = re.findall(r"!\[([^\]]+)\]\(([^)]+\.png)\)", markdown)
    names = [name for _, name in pictures]
    assert names == ["tau-heatmap.png", "tiny-run-scatter.png", "tiny-run-proxy-frequency.png",
                     "tiny-run-convergence.png", "tiny-run-insight.png"]
    for alt, name in pictures:
        assert len(alt) > 20
        assert (report_dir / name).read_bytes().startswith(PNG_MAGIC)
    # Every figure is inlined in the page, the same bytes as the file beside the markdown.
    page = (report_dir / "report.html").read_text()
    inlined = re.findall(r'<figure id="([^"]+)"><img src="data:image/png;base64,([^"]+)"', page)
    assert [name for name, _ in inlined] == names
    for name, data in inlined:
        assert base64.b64decode(data) == (report_dir / name).read_bytes()
    result = json.loads((run_dir / "result.json").read_text())
    assert f"`{result['expression']['infix']}`" in markdown
    assert "seeds 0-2" in markdown and "gpsr commit `" in markdown
    # The methods file's row and its leave-one-out table; the gpsr row's recorded test tau.
    assert "| peer-method | **0.987** | - |" in markdown
    assert "| peer-method | **0.123** |" in markdown
    tau = result["taus"]["test"]["MINIMICRO-DIGITS-CLASS"]
    assert re.search(rf"\| gpsr: tiny-run \| [-0-9.*]+ \| \**{tau:.3f}\**", markdown)


def test_insight_table_uses_the_chosen_expressions_proxies(report_dir, run_dir):
    expression = json.loads((run_dir / "result.json").read_text())["expression"]
    markdown = (report_dir / "report.md").read_text()
    table = markdown[markdown.index("| variant |"):].split("\n\n")[0].splitlines()[2:]
    labels = [row.split(" | ")[0].removeprefix("| ") for row in table]
    assert labels[0] == "chosen metric"
    assert [label.removeprefix("without ") for label in labels
            if label.startswith("without ")] == expression["proxies"]
    assert all(re.fullmatch(r"-?\d\.\d{3} \([+-]\d\.\d{3}\)|-", cell.strip(" |"))
               for row in table[1:] for cell in row.split(" | ")[1:])


def test_also_evaluates_each_runs_metric_on_more_problems(run_dir, tmp_path):
    other = shipped_problems(["MINIMACRO-DIGITS-CLASS"])[0]
    blocks, _ = build_report([run_dir], device="cpu", also=[other])
    table = next(b for b in blocks if b[0] == "table" and b[1][0] == "metric"
                 and "MINIMACRO-DIGITS-CLASS" in b[1])
    assert "More problems" in [b[1] for b in blocks if b[0] == "h3"]
    column = table[1].index("MINIMACRO-DIGITS-CLASS")
    run = load_run(run_dir)
    tau = gpsr.evaluate(run.expression, gpsr.build_dataset([other]), "cpu")["test"]
    row = next(r for r in table[2] if r[0] == "gpsr: tiny-run")
    assert row[column] == f"{tau['MINIMACRO-DIGITS-CLASS']:.3f}"
    snip = next(r for r in table[2] if r[0] == "snip")
    expected = gpsr.evaluate("snip", gpsr.build_dataset([other]), "cpu")["test"]
    assert snip[column] == f"{expected['MINIMACRO-DIGITS-CLASS']:.3f}"


def test_missing_data_is_one_note_and_the_rest_renders(run_dir, tmp_path):
    copy = tmp_path / "moved-run"
    shutil.copytree(run_dir, copy)
    result = json.loads((copy / "result.json").read_text())
    result["data"]["problems"]["MINIMICRO-DIGITS-CLASS"]["source"] = "/nowhere/elsewhere.csv"
    (copy / "result.json").write_text(json.dumps(result))
    blocks, notes = build_report([copy], device="cpu")
    assert notes == ["MINIMICRO-DIGITS-CLASS: data not found (/nowhere/elsewhere.csv)"]
    written = write_report(blocks, tmp_path / "page")
    assert "data not found" in (tmp_path / "page" / "report.md").read_text()
    assert any(p.name == "moved-run-scatter.png" for p in written)

    for problem in result["data"]["problems"].values():
        problem["source"] = "/nowhere/elsewhere.csv"
    (copy / "result.json").write_text(json.dumps(result))
    blocks, notes = build_report([copy], device="cpu")
    assert len(notes) == 2
    figures = [b[1] for b in blocks if b[0] == "figure"]
    assert figures == ["tau-heatmap.png", "moved-run-proxy-frequency.png",
                       "moved-run-convergence.png"]


def test_bad_inputs_are_one_line_errors(tmp_path, run_dir):
    res = invoke("report", tmp_path / "absent")
    assert res.exit_code == 2 and "no such run folder" in res.output
    bad = tmp_path / "methods.json"
    bad.write_text(json.dumps({"problems": [], "split": "test", "methods": [{"name": "m"}]}))
    with pytest.raises(GpsrError, match=r"methods.json: method 'm': 'taus' must be"):
        read_methods(bad)
    bad.write_text(json.dumps({"problems": [], "split": "test", "methods": [
        {"name": "m", "taus": {"test": {"P": 0.5}}, "seconds": "fast"}]}))
    with pytest.raises(GpsrError, match=r"method 'm': seconds is 'fast'"):
        read_methods(bad)
    bad.write_text(json.dumps({"problems": [], "split": "test", "methods": [],
                               "leave_one_out": {"m": {"P": "high"}}}))
    with pytest.raises(GpsrError, match=r"leave_one_out of 'm': tau of P is 'high'"):
        read_methods(bad)
    res = invoke("report", run_dir, "--methods", bad, "--out", tmp_path / "page")
    assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1
    res = invoke("report", run_dir, "--split", "validation", "--out", tmp_path / "page")
    assert res.exit_code == 2 and "unknown split 'validation'" in res.output


# ---- in a browser ----------------------------------------------------------------------------
_COUNT_IMAGES = """<script>window.addEventListener("load", function () {
  var images = Array.from(document.images);
  var loaded = images.filter(function (i) { return i.complete && i.naturalWidth > 0; });
  var out = document.createElement("output");
  out.id = "gpsr-images";
  out.textContent = loaded.length + "/" + images.length;
  document.body.appendChild(out);
});</script>"""


def _images_loaded(page: str) -> tuple[int, int]:
    """(loaded, total) images of an HTML page, as headless Chromium sees them after load."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "page.html"
        path.write_text(page.replace("</body>", _COUNT_IMAGES + "</body>"))
        done = subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--no-first-run", f"--user-data-dir={folder}/profile", "--window-size=1280,1000",
             "--dump-dom", path.as_uri()],
            capture_output=True, text=True, timeout=120,
        )
    found = re.search(r'<output id="gpsr-images">(\d+)/(\d+)</output>', done.stdout)
    assert found, f"chromium printed no image count (exit {done.returncode}): {done.stderr[-500:]}"
    return int(found.group(1)), int(found.group(2))


@pytest.mark.skipif(not (shutil.which("chromium") or shutil.which("chromium-browser")),
                    reason="Debian's chromium is not installed (apt-get install -y chromium)")
def test_page_loads_in_chromium_with_every_figure(report_dir):
    page = (report_dir / "report.html").read_text()
    figures = page.count("<figure ")
    assert figures == 5
    assert _images_loaded(page) == (figures, figures)
    # The check itself can fail: a figure whose PNG is cut short does not load.
    start = page.index("base64,") + len("base64,")
    broken = page[:start] + base64.b64encode(PNG_MAGIC + b"cut").decode() \
        + page[page.index('"', start):]
    assert _images_loaded(broken) == (figures - 1, figures)


def test_html_escapes_text():
    page = render_html([("p", "a <b> & `x<y`"), ("table", ["<h>"], [["1 < 2"]], {(0, 0)})])
    assert "a &lt;b&gt; &amp; <code>x&lt;y</code>" in page
    assert "<td><strong>1 &lt; 2</strong></td>" in page
