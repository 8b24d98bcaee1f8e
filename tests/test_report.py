"""Report: a fake pipeline tree in tmp_path, rendered to HTML and Markdown."""

from __future__ import annotations

import io
import json
import math
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from aebench.report import build_report, format_value
from aebench.report.formatting import best_models, caption
from aebench.report.markdown import md_table

PARAMS = """\
# benchmark configuration
datasets: [mnist]
models: [ae, vae, acai]
train:
  epochs: 2
  seed: 0
"""

AE_METRICS = {"recon_mse": 0.0123, "knn_acc": 0.912, "psnr": 21.5, "custom_score": 7.0}
VAE_METRICS = {"recon_mse": 0.0456, "knn_acc": 0.955, "psnr": float("nan"), "custom_score": 9.0}


def _tiny_png() -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(0.5, 0.5), dpi=20)
    FigureCanvasAgg(fig)
    fig.add_subplot().plot([0, 1], [1, 0])
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("repo")
    (root / "params.yaml").write_text(PARAMS)
    png = _tiny_png()
    for model, metrics in (("ae", AE_METRICS), ("vae", VAE_METRICS)):
        folder = root / "eval" / "mnist" / model / "seed0"
        (folder / "plots").mkdir(parents=True)
        # json.dumps writes NaN as the bare token NaN, as the evaluate stage does.
        (folder / "metrics.json").write_text(json.dumps(metrics))
        (folder / "plots" / "reconstructions.png").write_bytes(png)
        (folder / "plots" / "codes_2d.png").write_bytes(png)
        (folder / "plots" / "training_curve.csv").write_text(
            "epoch,train_loss,val_loss\n1,1.0,1.2\n2,0.6,0.8\n3,0.4,0.7\n"
        )
    run = {
        "run_id": "0123456789abcdef0123456789abcdef",
        "experiment": "aebench-mnist",
        "registered_name": "aebench-mnist-ae",
        "version": "3",
        "git_commit": "a" * 40,
        "data_hash": "b" * 64,
        "train_seconds": 75.0,
        "epochs": 2,
    }
    (root / "models" / "mnist" / "ae" / "seed0").mkdir(parents=True)
    (root / "models" / "mnist" / "ae" / "seed0" / "run.json").write_text(json.dumps(run))
    (root / "data" / "processed" / "mnist").mkdir(parents=True)
    (root / "data" / "processed" / "mnist" / "validation.json").write_text(json.dumps({"success": True}))
    # "acai" is configured but has no eval/ or models/ folder at all.
    return root


@pytest.fixture(scope="module")
def built(tree):
    html_path, md_path = build_report(tree)
    return tree, html_path, md_path, html_path.read_text("utf-8"), md_path.read_text("utf-8")


class _Cells(HTMLParser):
    """Metric cells: (model, metric) -> (text, classes); plus every <img> src and <a> href."""

    def __init__(self):
        super().__init__()
        self.cells: dict[tuple[str, str], tuple[str, set[str]]] = {}
        self.imgs: list[str] = []
        self.hrefs: list[str] = []
        self._model = None
        self._cell = None
        self._text = ""

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "tr" and "data-model" in a:
            self._model = a["data-model"]
        elif tag == "td" and self._model and "data-metric" in a:
            self._cell = (self._model, a["data-metric"], set((a.get("class") or "").split()))
            self._text = ""
        elif tag == "img":
            self.imgs.append(a.get("src", ""))
        elif tag in ("a", "link") and "href" in a:
            self.hrefs.append(a["href"])

    def handle_data(self, data):
        if self._cell:
            self._text += data

    def handle_endtag(self, tag):
        if tag == "td" and self._cell:
            model, metric, classes = self._cell
            self.cells[(model, metric)] = (self._text.strip(), classes)
            self._cell = None
        elif tag == "tr":
            self._model = None


def _parse(html: str) -> _Cells:
    parser = _Cells()
    parser.feed(html)
    return parser


def test_outputs_exist_and_html_is_html5(built):
    root, html_path, md_path, html, _ = built
    assert html_path == root / "reports" / "index.html" and html_path.is_file()
    assert md_path == root / "reports" / "summary.md" and md_path.is_file()
    assert html.startswith("<!DOCTYPE html>")
    assert '<meta charset="utf-8">' in html
    assert "<script" not in html.lower()


def test_html_shows_metric_values_and_arrows(built):
    *_, html, _ = built
    cells = _parse(html).cells
    assert cells[("ae", "recon_mse")][0] == "0.0123"
    assert cells[("vae", "knn_acc")][0] == "0.955"
    assert cells[("ae", "psnr")][0] == "21.50"
    assert cells[("vae", "custom_score")][0] == "9.000"
    assert "recon_<wbr>mse&nbsp;↓" in html and "knn_<wbr>acc&nbsp;↑" in html
    assert "custom_<wbr>score</th>" in html


def test_best_value_per_column_follows_direction(built):
    *_, html, md = built
    cells = _parse(html).cells
    # knn_acc: higher is better -> vae; recon_mse: lower is better -> ae.
    assert "best" in cells[("vae", "knn_acc")][1] and "best" not in cells[("ae", "knn_acc")][1]
    assert "best" in cells[("ae", "recon_mse")][1] and "best" not in cells[("vae", "recon_mse")][1]
    # Unknown metric: shown, never marked; psnr has a single finite value: not marked.
    assert not any("best" in cells[(m, "custom_score")][1] for m in ("ae", "vae"))
    assert "best" not in cells[("ae", "psnr")][1]
    assert re.search(r"^\| ae \| \*\*0\.0123\*\* \|", md, re.M)
    assert re.search(r"^\| vae \| 0\.0456 \|", md, re.M)
    assert "**0.955**" in md and "**0.912**" not in md


def test_nan_and_unevaluated_model_render_as_missing(built):
    *_, html, md = built
    cells = _parse(html).cells
    assert cells[("vae", "psnr")] == ("—", {"missing"})
    # Not evaluated: a row of "—" in every shared suite's table; none in the tables of metrics
    # only some models report (custom_score: ae and vae).
    for metric in ("recon_mse", "knn_acc", "psnr"):
        assert cells[("acai", metric)][0] == "—"
    assert ("acai", "custom_score") not in cells
    assert "not evaluated" in html
    assert "nan" not in " ".join(text for text, _ in cells.values()).lower()
    assert re.search(r"^\| acai _\(not evaluated\)_ \| — \| — \|$", md, re.M)
    assert re.search(r"^\| acai _\(not evaluated\)_ \| — \|$", md, re.M)


def test_html_is_self_contained(built):
    *_, html, _ = built
    parsed = _parse(html)
    assert 'src="http' not in html and "src='http" not in html
    assert "<link" not in html.lower() and "@import" not in html and "url(" not in html
    assert all(href.startswith("#") for href in parsed.hrefs)
    # 2 models x 2 figures + 1 training-curve figure, all embedded.
    assert len(parsed.imgs) == 5
    assert all(src.startswith("data:image/png;base64,") for src in parsed.imgs)
    assert "Reconstructions" in html and "Codes 2D" in html


def test_markdown_tables_are_well_formed(built):
    *_, md = built
    lines = md.splitlines()
    tables, current = [], []
    for line in lines + [""]:
        if line.startswith("|"):
            current.append(line)
        elif current:
            tables.append(current)
            current = []
    assert len(tables) >= 4  # metrics, environment, validation, runs
    for table in tables:
        counts = {len(re.findall(r"(?<!\\)\|", row)) for row in table}
        assert len(counts) == 1, table
        assert re.fullmatch(r"\|( :?---:? \|)+", table[1])


def test_markdown_links_figures_relatively(built):
    root, _, md_path, _, md = built
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert "../eval/mnist/ae/seed0/plots/reconstructions.png" in links
    assert all(not link.startswith(("/", "http")) for link in links)
    for link in links:
        assert (md_path.parent / link).is_file(), link


def test_provenance_section(built):
    *_, html, md = built
    for text in ("Provenance", "UTC", "0123456789abcdef0123456789abcdef", "aebench-mnist-ae",
                 "1 min 15 s", "✓ passed", "CPU", "Python", "# benchmark configuration"):
        assert text in html, text
        assert text in md, text
    assert "Git commit" in html  # the report's own commit, "unknown" outside a git repository


def test_empty_tree_does_not_crash(tmp_path):
    (tmp_path / "params.yaml").write_text("datasets: [mnist, cifar10]\nmodels: [ae]\n")
    html_path, md_path = build_report(tmp_path, tmp_path / "out")
    html = html_path.read_text("utf-8")
    assert html_path.parent == tmp_path / "out"
    assert "no training curves yet" in html and "not validated" in html
    assert "<img" not in html
    assert "unknown" in html  # git commit of a folder outside any repository


def test_unreadable_metrics_are_reported_not_raised(tmp_path):
    (tmp_path / "params.yaml").write_text("datasets: [d]\nmodels: [m]\n")
    (tmp_path / "eval" / "d" / "m" / "seed0").mkdir(parents=True)
    (tmp_path / "eval" / "d" / "m" / "seed0" / "metrics.json").write_text("{not json")
    html_path, _ = build_report(tmp_path)
    assert "unreadable metrics.json" in html_path.read_text("utf-8")


def test_format_value():
    assert format_value(0.91234, "knn_acc") == "0.912"
    assert format_value(1.0, "linear_acc") == "1.000"
    assert format_value(0.0123) == "0.0123"
    assert format_value(23.456) == "23.46"
    assert format_value(123.456) == "123.5"
    assert format_value(12345.6) == "12,346"
    assert format_value(12) == "12"
    assert format_value(float("nan")) == "—"
    assert format_value(None) == "—"


def test_best_models_ties_and_directions():
    assert best_models({"a": 1.0, "b": 2.0, "c": 2.0}, "max") == {"b", "c"}
    assert best_models({"a": 1.0, "b": 2.0, "c": math.nan}, "min") == {"a"}
    assert best_models({"a": 1.0, "b": 2.0}, None) == set()
    assert best_models({"a": 1.0, "b": None}, "max") == set()


def test_caption_and_md_table_escape():
    assert caption("reconstructions") == "Reconstructions"
    assert caption("swap_grid") == "Swap grid"
    table = md_table(["a", "b"], [["x|y", "z"]]).splitlines()
    assert len({len(re.findall(r"(?<!\\)\|", row)) for row in table}) == 1
