"""The report's newer sections on a fake tree: claims, figures grouped by kind, provenance."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
import yaml

from report_fake_tree import build_tree

from aebench.report import build_report

METRICS = {
    "digits": {"ae": {"recon_mse": 0.02, "knn_acc": 0.90, "eval_seconds": 4.0},
               "vae": {"recon_mse": 0.03, "knn_acc": 0.93, "eval_seconds": 6.0},
               "mlvae": {"content_acc": 0.85, "style_acc": 0.35, "chance_acc": 0.11}},
    "lines": {"ae": {"interp_smoothness": 0.44}, "acai": {"interp_smoothness": 0.10}},
}
CLAIMS = {"claims": [
    {"id": "acai-smooth", "paper": "ACAI", "statement": "ACAI interpolates smoothly.", "needs": ["lines"],
     "paper_result": "0.10 vs 0.44", "checks": [{"metric": "interp_smoothness", "model": "acai", "op": "<",
                                                   "other_model": "ae"}]},
    {"id": "mlvae-style", "paper": "ML-VAE", "statement": "Style is near chance.", "needs": ["labels"],
     "checks": [{"metric": "style_acc", "model": "mlvae", "op": "<", "value_from": "1/n_classes", "plus": 0.1}]},
    {"id": "dvae-loop", "paper": "DVAE", "statement": "Topology.", "needs": ["manifold"],
     "checks": [{"metric": "gw_distance", "model": "dvae", "op": "<", "other_model": "vae"}]},
]}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = build_tree(tmp_path_factory.mktemp("repo"), METRICS, models=["ae", "vae", "mlvae", "acai"],
                      extra_kinds={("digits", "mlvae"): ["swap_grid", "zeta_custom"], ("digits", "vae"): ["roc"]},
                      n_classes={"digits": 10}, traits={"lines": ("lines",)}, seeds=(0, 1, 2))
    claims = root / "claims.yaml"
    claims.write_text(yaml.safe_dump(CLAIMS))
    html_path, md_path = build_report(root, claims_path=claims)
    return root, html_path.read_text("utf-8"), md_path.read_text("utf-8")


class _Structure(HTMLParser):
    """Claim rows (id -> status), figure blocks per dataset (kind -> models) in page order."""

    def __init__(self):
        super().__init__()
        self.claims: dict[str, str] = {}
        self.kinds: dict[str, list[tuple[str, list[str]]]] = {}
        self._dataset = None
        self._in_caption = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "tr" and "data-claim" in a:
            self.claims[a["data-claim"]] = a["data-status"]
        elif tag == "section" and a.get("id", "").startswith("dataset-"):
            self._dataset = a["id"].removeprefix("dataset-")
            self.kinds[self._dataset] = []
        elif tag == "details" and "data-kind" in a and self._dataset:
            self.kinds[self._dataset].append((a["data-kind"], []))
        elif tag == "figcaption" and self._dataset and self.kinds[self._dataset]:
            self._in_caption = True

    def handle_data(self, data):
        if self._in_caption:
            self.kinds[self._dataset][-1][1].append(data.strip())

    def handle_endtag(self, tag):
        if tag == "figcaption":
            self._in_caption = False


def _structure(html: str) -> _Structure:
    parser = _Structure()
    parser.feed(html)
    return parser


def test_claims_statuses_and_numbers(built):
    root, html, md = built
    assert _structure(html).claims == {"acai-smooth": "held", "mlvae-style": "not held", "dvae-loop": "not run"}
    assert "interp_smoothness: acai 0.100 ± 0 (n=3) &lt; ae 0.440 ± 0 (n=3)" in html
    assert "style_acc: mlvae 0.350 ± 0 (n=3) &lt; 1/n_classes = 1/10 + 0.1 (0.200)" in html
    assert "difference -0.34, 95% CI [-0.34, -0.34], paired t over 3 shared seeds" in html
    assert "no dataset of this run has what the claim needs: manifold" in html
    counts = "1 held · 1 not held · 0 inconclusive · 1 not run"
    assert counts in html and counts in md
    # every claim row with values has its seeds figure, embedded in the page and linked from summary.md
    assert html.count('<img class="seeds"') == 2 and (root / "reports/figures/claim_acai-smooth-lines.png").is_file()
    assert "](figures/claim_acai-smooth-lines.png)" in md
    claims_md = (root / "reports" / "claims.md").read_text()
    assert re.search(r"^\| \*\*held\*\* \| ACAI \| ACAI interpolates smoothly\. \| lines \| ✓ interp_smoothness", claims_md, re.M)
    assert claims_md.strip() in md


def test_figures_are_grouped_by_kind_across_models(built):
    _, html, _ = built
    kinds = _structure(html).kinds
    # Known kinds in their fixed order, unknown ones after; models in the run's order.
    assert kinds["digits"] == [("reconstructions", ["ae", "vae", "mlvae"]), ("samples", ["ae", "vae", "mlvae"]),
                               ("codes_2d", ["ae", "vae", "mlvae"]), ("roc", ["vae"]), ("swap_grid", ["mlvae"]),
                               ("zeta_custom", ["mlvae"])]
    assert [k for k, _ in kinds["lines"]] == ["reconstructions", "samples", "codes_2d"]
    assert kinds["lines"][0][1] == ["ae", "acai"]


def test_markdown_shows_figures_side_by_side(built):
    root, _, md = built
    block = md.split("#### Reconstructions", 1)[1].split("####", 1)[0]
    assert "| ae | vae | mlvae |" in block
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", block)
    assert links[:3] == [f"../eval/digits/{m}/seed0/plots/reconstructions.png" for m in ("ae", "vae", "mlvae")]
    assert all((root / "reports" / link).is_file() for link in links)


def test_provenance_times_and_data_hashes(built):
    root, html, md = built
    # train: run.json train_seconds 10 + 11 + 12 on digits, 10 + 11 on lines (acai is 2nd there), 3 seeds each
    assert re.search(r"\| train \| 15/15 \| 2 min 42 s \| models/<dataset>/<model>/seed<seed>/run\.json: train_seconds \|", md)
    assert re.search(r"\| evaluate \| 6/15 \| 30\.0 s \| eval/", md)
    assert re.search(r"\| diffmap \| 0/2 \| not recorded \|", md)
    assert "DVC records no stage durations" in html
    # both have processed data whose hash differs from the runs' recorded one
    assert re.search(r"\| digits \| — not validated \| 10 \| [0-9a-f]{16} \| ✗ ae, mlvae, vae trained on other data \|", md)
    assert re.search(r"\| lines \| — not validated \| 1 \| [0-9a-f]{16} \| ✗ acai, ae trained on other data \|", md)
    assert "Training devices" in html and "scikit-learn 1." in html


def test_outputs_for_dvc_and_readme(built):
    root, _, _ = built
    for rel in ("reports/claims.md", "reports/plots/training_curves.csv", "reports/plots/roc.csv",
                "reports/figures/training_curves_digits.png", "reports/figures/training_curves_lines.png"):
        assert (root / rel).is_file(), rel


def test_missing_claims_file_is_a_user_error(tmp_path):
    from aebench.errors import UserError

    (tmp_path / "params.yaml").write_text("datasets: [d]\nmodels: [m]\n")
    with pytest.raises(UserError, match="cannot read the claims file"):
        build_report(tmp_path, claims_path=tmp_path / "nope.yaml")
    assert not (tmp_path / "reports").exists()


def test_each_dataset_lists_only_its_planned_runs(built):
    _, html, md = built
    rows: dict[str, list[str]] = {}
    for dataset, body in re.findall(r'<table class="metrics" data-dataset="(\w+)"[^>]*>(.*?)</table>', html, re.S):
        rows.setdefault(dataset, []).extend(re.findall(r'data-model="(\w+)"', body))
    assert list(dict.fromkeys(rows["digits"])) == ["ae", "vae", "mlvae"]
    assert list(dict.fromkeys(rows["lines"])) == ["ae", "acai"]
    assert "(not evaluated)" not in html


def test_bad_runs_section_is_a_user_error(tmp_path):
    from aebench.errors import UserError

    (tmp_path / "params.yaml").write_text("datasets: [d]\nmodels: [m]\nruns: [d-m]\n")
    with pytest.raises(UserError, match="`runs` must map keys to"):
        build_report(tmp_path)
