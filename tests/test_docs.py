"""The documentation builds with warnings as errors, and its equations come from the model modules."""

from __future__ import annotations

import html
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAPER_PAGES = ("spikecoding", "recollection", "multimodal", "resu")

needs_sphinx = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("sphinx", "sphinx_gallery", "furo", "myst_parser")),
    reason="the docs extra is not installed (pip install -e '.[docs]')",
)


@needs_sphinx
def test_docs_build_without_warnings_and_render_the_model_equations(tmp_path):
    out = tmp_path / "html"
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
         "-d", str(tmp_path / "doctrees"), "docs", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, (
        "sphinx-build failed or warned (warnings are errors); its output:\n" + proc.stdout[-4000:]
        + proc.stderr[-8000:]
    )
    assert (out / "index.html").is_file()
    for page in PAPER_PAGES:
        assert (out / "papers" / f"{page}.html").is_file(), f"paper page {page}.html was not built"
    assert (out / "auto_examples" / "index.html").is_file(), "the examples gallery was not built"

    import b2models

    name = "LIF_CODING_NEURON"  # the Fig 2 coding neuron: several lines, units and comments
    source = b2models.equations("spikecoding")[name].strip("\n")
    page = (out / "papers" / "spikecoding.html").read_text(encoding="utf-8")
    blocks = [html.unescape(re.sub(r"<[^>]+>", "", b)) for b in re.findall(r"<pre>(.*?)</pre>", page, re.S)]
    assert name in page, f"{name} is not named on the spike-coding page"
    assert any(source in b for b in blocks), (
        f"the text of b2models.models.spikecoding.{name} is not in any code block of the rendered spike-coding "
        "page: the page must render the module's string (docs/_ext/b2models_docs.py), not a copy"
    )


def test_documented_protocol_example_runs(tmp_path):
    """The protocol shown in docs/protocols.md runs from its file, as the page says."""
    import b2models

    run = b2models.run(ROOT / "docs" / "snippets" / "my_protocol.py", backend="numpy", quick=True, out=tmp_path)
    assert run.protocol == "my.rate"
    assert run.metrics["monotonic"] is True, f"rate should grow with the input current: {run.arrays['rates']}"
    assert run.metrics["rate_max_hz"] > 0
    assert set(run.figures) == {"rate_curve"}
