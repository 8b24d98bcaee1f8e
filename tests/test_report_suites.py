"""The report's metric tables: a small table per suite, no wider than 14 columns; metrics the
dataset fixes left out; metrics by group size drawn as a figure (a fake tree with every key
the evaluate stage writes)."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from report_fake_tree import build_tree, many_metrics

from aebench.report import build_report
from aebench.report.collect import DatasetResult, ModelResult, read_n_factors
from aebench.report.formatting import order_columns
from aebench.report.suites import MAX_COLUMNS, OWN, split_metrics, suite_of

MODELS = ["ae", "vae", "acai", "acn", "mlvae"]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    metrics = many_metrics()
    root = build_tree(tmp_path_factory.mktemp("many"), metrics, models=MODELS,
                      n_classes={"digits": 10, "lines": 10, "shapes": 3},
                      factors={"lines": ("angle",), "shapes": ("shape", "scale", "pos_x")})
    html_path, md_path = build_report(root)
    return root, metrics, html_path.read_text("utf-8"), md_path.read_text("utf-8")


class _Tables(HTMLParser):
    """Every table: its class, dataset and suite, widest row (in cells), and metric keys."""

    def __init__(self):
        super().__init__()
        self.tables: list[dict] = []
        self.imgs: list[tuple[str, str]] = []  # (alt, src)
        self._row = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table":
            self.tables.append({"class": a.get("class"), "dataset": a.get("data-dataset"),
                                "suite": a.get("data-suite"), "width": 0, "metrics": [], "models": []})
        elif tag == "tr" and self.tables:
            self._row = 0
            if "data-model" in a:
                self.tables[-1]["models"].append(a["data-model"])
        elif tag in ("td", "th") and self.tables:
            self._row += int(a.get("colspan", 1))
            self.tables[-1]["width"] = max(self.tables[-1]["width"], self._row)
            if tag == "th" and "data-metric" in a:
                self.tables[-1]["metrics"].append(a["data-metric"])
        elif tag == "img":
            self.imgs.append((a.get("alt", ""), a.get("src", "")))


def _tables(html: str) -> _Tables:
    parser = _Tables()
    parser.feed(html)
    return parser


def _md_tables(md: str) -> list[list[str]]:
    tables, current = [], []
    for line in md.splitlines() + [""]:
        if line.startswith("|"):
            current.append(line)
        elif current:
            tables.append(current)
            current = []
    return tables


def _md_section(md: str, dataset: str) -> str:
    return md.split(f"## Dataset: {dataset}\n", 1)[1].split("\n## ", 1)[0]


def test_no_table_is_wider_than_14_columns(built):
    _, metrics, html, md = built
    parsed = _tables(html)
    metric_tables = [t for t in parsed.tables if t["class"] == "metrics"]
    assert len(metric_tables) >= 12
    assert max(t["width"] for t in parsed.tables) <= MAX_COLUMNS, [(t["suite"], t["width"]) for t in parsed.tables]
    widths = [len(re.findall(r"(?<!\\)\|", table[0])) - 1 for table in _md_tables(md)]
    assert max(widths) <= MAX_COLUMNS
    # Before the split, digits alone had a column per key: far wider.
    assert len(metrics["digits"]["mlvae"]) > 3 * MAX_COLUMNS // 2


def test_metrics_are_split_into_suites(built):
    _, metrics, html, md = built
    digits = [t for t in _tables(html).tables if t["dataset"] == "digits"]
    assert [t["suite"] for t in digits] == ["reconstruction", "representation", "generative", "ood",
                                            OWN, OWN, OWN, "time"]
    by_suite = {t["suite"]: t for t in digits}
    assert by_suite["reconstruction"]["metrics"] == ["recon_mse", "psnr", "neg_elbo"]
    assert by_suite["representation"]["metrics"] == ["knn_acc", "linear_acc", "cluster_acc", "cluster_acc_paper", "nmi"]
    assert by_suite["ood"]["metrics"] == ["ood_auroc", "ood_auroc_neg_elbo"]
    assert by_suite["time"]["metrics"] == ["train_seconds", "train_samples_per_s", "eval_seconds"]
    # Shared suites list every model; own metrics only the models that report them.
    assert by_suite["representation"]["models"] == MODELS
    own = [(t["models"], t["metrics"]) for t in digits if t["suite"] == OWN]
    assert own[0] == (["vae", "acn", "mlvae"], ["coding_cost_nats", "coding_cost_recon_nats",
                                                  "coding_cost_total_nats", "knn_acc_sampled"])
    assert own[1] == (["acai"], ["linear_acc_joint"])
    assert own[2][0] == ["mlvae"] and "content_acc" in own[2][1] and "chance_acc" in own[2][1]
    # Every key of every model is somewhere: a table, the group-size curves or the left-out note.
    shown = {k for t in digits for k in t["metrics"]}
    curves = {k for k in metrics["digits"]["mlvae"] if re.fullmatch(r"\w+_g\d+", k)}
    assert shown | curves == {k for m in metrics["digits"].values() for k in m}
    section = _md_section(md, "digits")
    for title in ("Reconstruction and likelihood", "Representation", "Generative and topology",
                  "Out-of-distribution detection", "Own metrics: vae, acn, mlvae", "Own metrics: acai",
                  "Own metrics: mlvae", "Time and throughput", "Metrics by group size"):
        assert f"#### {title}\n" in section, title


def test_grouping_never_depends_on_model_names():
    metrics = many_metrics()["digits"]
    renamed = {f"model{i}": m for i, m in enumerate(metrics.values())}

    def layout(ms: dict[str, dict]):
        results = [ModelResult(name, metrics=values) for name, values in ms.items()]
        ds = DatasetResult("d", None, results, order_columns({k for v in ms.values() for k in v}), {})
        return [(t.suite, t.columns, len(t.models)) for t in split_metrics(ds).tables]

    assert layout(metrics) == layout(renamed)
    assert suite_of("knn_acc") == "representation" and suite_of("knn_acc_sampled") == OWN
    assert suite_of("ood_auroc_neg_elbo") == "ood" and suite_of("coding_cost_nats") == OWN


def test_single_factor_disentanglement_is_left_out(built):
    _, _, html, md = built
    tables = _tables(html).tables
    keys = {d: {k for t in tables if t["dataset"] == d for k in t["metrics"]} for d in ("lines", "shapes")}
    # lines: one generative factor, D = 1 by definition; the other DCI scores and MIG stay.
    assert "dci_disentanglement" not in keys["lines"]
    assert {"dci_completeness", "dci_informativeness", "mig"} <= keys["lines"]
    assert "dci_disentanglement" in keys["shapes"]
    note = "Left out: dci_disentanglement (1 by definition with fewer than two generative factors)."
    assert note in _md_section(md, "lines") and note not in _md_section(md, "shapes")
    assert "dci_disentanglement" not in _md_section(md, "lines").replace(note, "")
    assert "1 generative factor ·" in html and "3 generative factors" in html


def test_factor_count_without_processed_data_comes_from_the_metrics(tmp_path):
    metrics = {"one": {"a": {"dci_disentanglement": 1.0, "mig": 0.1}, "b": {"dci_disentanglement": 0.9999999999}},
               "many": {"a": {"dci_disentanglement": 1.0, "mig": 0.1}, "b": {"dci_disentanglement": 0.4}}}
    root = build_tree(tmp_path / "repo", metrics)  # no data/processed: factors unknown
    _, md_path = build_report(root)
    md = md_path.read_text("utf-8")
    assert "dci_disentanglement" not in _md_section(md, "one").split("_Left out")[0]
    assert "dci_disentanglement ↑" in _md_section(md, "many")


def test_read_n_factors_counts_varying_factor_columns(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"index": [0, 1, 2], "factor_angle": [0.0, 0.5, 1.0], "factor_colour": [2.0, 2.0, 2.0],
                      "factor_size": [1, 2, 3]})
    pq.write_table(table, tmp_path / "train.parquet", row_group_size=2)
    assert read_n_factors(tmp_path) == 2
    assert read_n_factors(tmp_path / "absent") is None


def test_group_size_curves_are_a_figure_not_columns(built):
    root, _, html, md = built
    figure = root / "reports" / "figures" / "group_size_digits.png"
    assert figure.is_file() and figure.read_bytes().startswith(b"\x89PNG")
    assert (root / "reports" / "figures" / "group_size_shapes.png").is_file()
    assert not (root / "reports" / "figures" / "group_size_lines.png").exists()
    parsed = _tables(html)
    assert any(alt == "Metrics by group size for digits" and src.startswith("data:image/png;base64,")
               for alt, src in parsed.imgs)
    assert not any(re.fullmatch(r"\w+_g\d+", k) for t in parsed.tables for k in t["metrics"])
    section = _md_section(md, "digits")
    assert "![Metrics by group size for digits](figures/group_size_digits.png)" in section
    # The values stay readable: a narrow table, a row per (model, metric), a column per size.
    assert "| Model | Metric | group size 1 | group size 2 | group size 5 | group size 10 |" in section
    assert re.search(r"^\| mlvae \| content_acc \| 0\.690 \| 0\.845 \| 0\.938 \| 0\.969 \|$", section, re.M)
    assert "content_acc_g1" not in section


def test_wide_and_empty_suites(tmp_path):
    wide = {f"probe_{i:02d}": float(i) for i in range(20)}
    metrics = {"d": {"a": {"recon_mse": 0.1, "ood_auroc": None, "psnr": None, **wide},
                     "b": {"recon_mse": 0.2, "ood_auroc": None, "psnr": float("nan")}}}
    root = build_tree(tmp_path / "repo", metrics)
    html_path, md_path = build_report(root)
    tables = [t for t in _tables(html_path.read_text("utf-8")).tables if t["class"] == "metrics"]
    # ood_auroc is null for every model: its table is dropped, not shown as a row of "—"; psnr:
    # no column of "—" beside recon_mse; both are named in a note.
    assert [t["suite"] for t in tables] == ["reconstruction", OWN, OWN]
    assert [t["width"] for t in tables] == [2, MAX_COLUMNS, 1 + 20 - (MAX_COLUMNS - 1)]
    assert [t["models"] for t in tables[1:]] == [["a"], ["a"]]
    md = md_path.read_text("utf-8")
    assert "#### Own metrics: a (1 of 2)" in md and "#### Own metrics: a (2 of 2)" in md
    assert "Out-of-distribution" not in md and "psnr ↑" not in md
    assert "No model has a value of: psnr, ood_auroc." in md


def test_group_size_figure_has_a_panel_per_metric(built):
    root, *_ = built
    from PIL import Image

    with Image.open(Path(root / "reports" / "figures" / "group_size_digits.png")) as image:
        width, height = image.size
    assert width > 2 * height  # three panels side by side
