"""The claims table: the packaged claims.yaml, and held / not held / inconclusive / not run on
known per-seed numbers."""

from __future__ import annotations

import ast
import json
from pathlib import Path
import math

import pytest
import yaml
from pydantic import ValidationError

from report_fake_tree import write_parquet_meta

from aebench.errors import UserError
from aebench.evaluation.directions import DIRECTIONS
from aebench.report.claims import (CLAIMS_FILE, HELD, INCONCLUSIVE, NOT_HELD, NOT_RUN, TRAITS, Budget, Check, Claim,
                                   PaperFigure, RunData, claims_json, evaluate_claim, evaluate_claims, load_claims,
                                   read_traits)

SEEDS = (0, 1, 2)


def per_seed(metrics: dict | None, seeds=SEEDS) -> dict[int, dict | None]:
    """One run's metrics per seed: a list gives each seed's value, a number the same on every seed."""
    if metrics is None:
        return {seed: None for seed in seeds}
    return {seed: {k: (v[i] if isinstance(v, list) else v) for k, v in metrics.items()} for i, seed in enumerate(seeds)}


def run_data(metrics: dict[tuple[str, str], dict | None], datasets=("d",), models=None, n_classes=None,
             traits=None, budgets=None, seeds=SEEDS) -> RunData:
    models = models if models is not None else sorted({m for _, m in metrics})
    traits = traits if traits is not None else {d: set(TRAITS) for d in datasets}
    return RunData(datasets=list(datasets), models=list(models),
                   seed_metrics={key: per_seed(m, seeds) for key, m in metrics.items()},
                   n_classes=n_classes or {}, traits=traits, budgets=budgets or {})


def claim(*checks: dict, needs=("labels",), **fields) -> Claim:
    return Claim(id="c", paper="P", statement="S", needs=list(needs), checks=[Check(**c) for c in checks], **fields)


def one_row(c: Claim, run: RunData):
    rows = evaluate_claim(c, run)
    assert len(rows) == 1, rows
    return rows[0]


# --------------------------------------------------------------------------- the packaged file


def test_packaged_claims_load_and_cover_the_five_papers():
    claims = load_claims()
    papers = {c.paper.split(" ")[0] for c in claims}
    assert {"ACAI", "ACN", "GWAE", "DVAE", "ML-VAE"} <= papers
    import yaml
    from pathlib import Path

    params = yaml.safe_load((Path(__file__).resolve().parents[1] / "params.yaml").read_text())
    ran = {(r["dataset"], r["model"]) for r in params["runs"].values()}
    for c in claims:  # every claim's models run together somewhere in `make repro`
        assert any(all((d, m) in ran for m in c.models) for d in params["datasets"]), c.id


def test_packaged_comparisons_point_the_way_each_metric_improves():
    """'A beats B' on a metric must use < for lower-is-better and > (or >=) for higher-is-better."""
    for c in load_claims():
        for check in c.checks:
            if check.is_comparison and check.right_metric == check.metric and check.right_model != check.model:
                expected = {"min": ("<", "<="), "max": (">", ">=")}[DIRECTIONS[check.metric]]
                assert check.op in expected, (c.id, check)


def test_no_model_name_in_the_report_code():
    """Claims are data: no string literal of the report's code (docstrings aside) is a model name."""
    names = {check.model for c in load_claims() for check in c.checks}
    names |= {check.other_model for c in load_claims() for check in c.checks if check.other_model}
    for path in CLAIMS_FILE.parent.glob("*.py"):
        tree = ast.parse(path.read_text())
        docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                      if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef)) and ast.get_docstring(node)}
        literals = {node.value for node in ast.walk(tree) if isinstance(node, ast.Constant)
                    and isinstance(node.value, str) and id(node) not in docstrings}
        assert not literals & names, (path.name, literals & names)


# --------------------------------------------------------------------------- known answers


def test_comparison_held_and_not_held():
    c = claim({"metric": "interp_smoothness", "model": "acai", "op": "<", "other_model": "ae"})
    held = one_row(c, run_data({("d", "acai"): {"interp_smoothness": 0.1}, ("d", "ae"): {"interp_smoothness": 0.44}}))
    assert held.status == HELD
    assert held.checks[0].describe() == "interp_smoothness: acai 0.100 ± 0 (n=3) < ae 0.440 ± 0 (n=3)"
    failed = one_row(c, run_data({("d", "acai"): {"interp_smoothness": 0.5}, ("d", "ae"): {"interp_smoothness": 0.44}}))
    assert failed.status == NOT_HELD and failed.reasons == []


def test_values_equal_when_rounded_are_shown_with_more_digits():
    c = claim({"metric": "ood_auroc", "model": "a", "op": ">=", "other_model": "b"})
    row = one_row(c, run_data({("d", "a"): {"ood_auroc": 0.99973141}, ("d", "b"): {"ood_auroc": 0.99996934}}))
    assert row.checks[0].describe() == "ood_auroc: a 0.999731 ± 0 (n=3) >= b 0.999969 ± 0 (n=3)"


def test_ties_hold_only_for_non_strict_ops():
    metrics = {("d", "a"): {"ood_auroc": 0.8}, ("d", "b"): {"ood_auroc": 0.8}}
    assert one_row(claim({"metric": "ood_auroc", "model": "a", "op": ">=", "other_model": "b"}),
                          run_data(metrics)).status == HELD
    assert one_row(claim({"metric": "ood_auroc", "model": "a", "op": ">", "other_model": "b"}),
                          run_data(metrics)).status == NOT_HELD


def test_other_metric_of_the_same_model_with_a_margin():
    c = claim({"metric": "content_acc", "model": "m", "op": ">", "other_metric": "style_acc"},
              {"metric": "style_acc", "model": "m", "op": "<", "other_metric": "chance_acc", "plus": 0.1})
    result = one_row(c, run_data({("d", "m"): {"content_acc": 0.9, "style_acc": 0.15, "chance_acc": 0.11}}))
    assert result.status == HELD
    assert result.checks[0].describe() == "m: content_acc 0.900 ± 0 (n=3) > style_acc 0.150 ± 0 (n=3)"
    assert result.checks[1].describe() == "m: style_acc 0.150 ± 0 (n=3) < chance_acc 0.110 ± 0 (n=3) + 0.1 (0.210)"
    assert math.isclose(result.checks[1].threshold, 0.21)
    # style 0.25 is not within 0.1 of chance 0.11
    result = one_row(c, run_data({("d", "m"): {"content_acc": 0.9, "style_acc": 0.25, "chance_acc": 0.11}}))
    assert [r.status for r in result.checks] == [HELD, NOT_HELD] and result.status == NOT_HELD


def test_fixed_value_and_chance_from_n_classes():
    metrics = {("d", "m"): {"style_acc": 0.18}}
    fixed = claim({"metric": "style_acc", "model": "m", "op": "<", "value": 0.2})
    assert one_row(fixed, run_data(metrics)).status == HELD
    chance = claim({"metric": "style_acc", "model": "m", "op": "<", "value_from": "1/n_classes", "plus": 0.05})
    result = one_row(chance, run_data(metrics, n_classes={"d": 10}))
    assert result.status == NOT_HELD  # 0.18 is not below 0.1 + 0.05
    assert result.checks[0].describe() == "style_acc: m 0.180 ± 0 (n=3) < 1/n_classes = 1/10 + 0.05 (0.150)"
    assert one_row(chance, run_data(metrics, n_classes={"d": 4})).status == HELD  # 0.18 < 0.30
    unknown = one_row(chance, run_data(metrics))
    assert unknown.status == NOT_RUN and "number of classes" in unknown.reasons[0]


@pytest.mark.parametrize("metrics, datasets, models, reason", [
    ({("d", "a"): {"x": 1.0}}, ("d",), ("a",), "no qualifying dataset (d) ran all of a, b"),
    ({("d", "a"): {"x": 1.0}}, ("d",), ("a", "b"), "no qualifying dataset (d) ran all of a, b"),
    ({("d", "a"): {"x": 1.0}, ("d", "b"): None}, ("d",), ("a", "b"), "b: not evaluated on `d`"),
    ({("d", "a"): {"x": 1.0}, ("d", "b"): {"y": 2.0}}, ("d",), ("a", "b"), "b: no `x`"),
    ({("d", "a"): {"x": 1.0}, ("d", "b"): {"x": None}}, ("d",), ("a", "b"), "b: no `x`"),
    ({("d", "a"): {"x": float("nan")}, ("d", "b"): {"x": 2.0}}, ("d",), ("a", "b"), "a: no `x`"),
    ({("d", "a"): {}, ("d", "b"): {}}, ("d",), ("a", "b"), "a, b: no `x`"),
])
def test_not_run_says_why(metrics, datasets, models, reason):
    result = one_row(claim({"metric": "x", "model": "a", "op": "<", "other_model": "b"}),
                            run_data(metrics, datasets, models))
    assert result.status == NOT_RUN
    assert result.reasons == [reason]


def test_a_failed_check_outranks_a_missing_one():
    c = claim({"metric": "x", "model": "a", "op": "<", "other_model": "b"},
              {"metric": "y", "model": "a", "op": "<", "other_model": "b"})
    result = one_row(c, run_data({("d", "a"): {"x": 3.0}, ("d", "b"): {"x": 2.0}}))
    assert [r.status for r in result.checks] == [NOT_HELD, NOT_RUN]
    assert result.status == NOT_HELD


# --------------------------------------------------------------------------- the file format


@pytest.mark.parametrize("check, message", [
    ({"metric": "x", "model": "a", "op": "<"}, "exactly one right-hand side"),
    ({"metric": "x", "model": "a", "op": "<", "other_model": "b", "value": 1}, "exactly one right-hand side"),
    ({"metric": "x", "model": "a", "op": "!=", "other_model": "b"}, "checks.0.op"),
    ({"metric": "x", "model": "a", "op": "<", "value_from": "n_classes"}, "checks.0.value_from"),
    ({"metric": "x", "model": "a", "op": "<", "other_model": "b", "colour": "red"}, "checks.0.colour"),
])
def test_bad_claims_file_is_one_line_naming_the_key(tmp_path, check, message):
    path = tmp_path / "claims.yaml"
    path.write_text(yaml.safe_dump({"claims": [{"id": "c", "paper": "P", "statement": "S", "needs": ["labels"],
                                                "checks": [check]}]}))
    with pytest.raises(UserError, match=message) as info:
        load_claims(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_duplicate_ids_and_bad_yaml(tmp_path):
    one = {"id": "c", "paper": "P", "statement": "S", "needs": ["labels"],
           "checks": [{"metric": "x", "model": "a", "op": "<", "value": 1}]}
    path = tmp_path / "claims.yaml"
    path.write_text(yaml.safe_dump({"claims": [one, one]}))
    with pytest.raises(UserError, match="duplicate claim ids: c"):
        load_claims(path)
    path.write_text("claims: [unclosed")
    with pytest.raises(UserError, match="not valid YAML"):
        load_claims(path)


def test_unknown_trait_is_refused(tmp_path):
    path = tmp_path / "claims.yaml"
    path.write_text(yaml.safe_dump({"claims": [{"id": "c", "paper": "P", "statement": "S", "needs": ["colour"],
                                                "checks": [{"metric": "x", "model": "a", "op": "<", "value": 1}]}]}))
    with pytest.raises(UserError, match="needs.0"):
        load_claims(path)


def test_traits_from_parquet_schema_metadata(tmp_path):
    write_parquet_meta(tmp_path / "mnist", 10)
    assert read_traits(tmp_path / "mnist", has_ood_companion=True) == ({"labels", "images", "ood"}, 10)
    write_parquet_meta(tmp_path / "loop", 4, kind="vector", traits=("manifold", "not-a-trait"))
    assert read_traits(tmp_path / "loop", False) == ({"labels", "points", "manifold"}, 4)
    write_parquet_meta(tmp_path / "shapes", 1, factors=("scale", "x"))
    assert read_traits(tmp_path / "shapes", False) == ({"images", "factors"}, 1)  # one class: no labels
    write_parquet_meta(tmp_path / "one_factor", 3, factors=("angle",))
    assert "factors" not in read_traits(tmp_path / "one_factor", False)[0]
    assert read_traits(tmp_path / "absent", False) == (set(), None)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "train.parquet").write_bytes(b"not parquet")
    assert read_traits(tmp_path / "broken", True) == ({"ood"}, None)


# --------------------------------------------------------------------------- rows per dataset


ACC = {"metric": "knn_acc", "model": "a", "op": ">", "other_model": "b"}


def test_a_claim_gets_a_row_on_every_qualifying_dataset_the_claims_file_never_names():
    metrics = {("cifar10", "a"): {"knn_acc": 0.5}, ("cifar10", "b"): {"knn_acc": 0.4},
               ("svhn", "a"): {"knn_acc": 0.3}, ("svhn", "b"): {"knn_acc": 0.6},
               ("celeba", "a"): {}, ("celeba", "b"): None, ("fashion", "b"): {"knn_acc": 0.2},
               ("loop", "a"): {"knn_acc": 0.9}, ("loop", "b"): {"knn_acc": 0.1}}
    traits = {"cifar10": {"labels", "images"}, "svhn": {"labels", "images"}, "celeba": {"labels", "images"},
              "loop": {"points", "manifold"}, "fashion": {"labels", "images"}, "empty": {"labels", "images"}}
    rows = evaluate_claim(claim(ACC, needs=("labels", "images")),
                          run_data(metrics, datasets=list(traits), models=["a", "b"], traits=traits))
    # loop lacks labels; on `fashion` only one model of the claim ran, on `empty` none
    assert [(r.dataset, r.status) for r in rows] == [("cifar10", HELD), ("svhn", NOT_HELD), ("celeba", NOT_RUN)]
    assert rows[2].reasons == ["a: no `knn_acc`; b: not evaluated on `celeba`"]


def test_a_claim_without_a_qualifying_dataset_is_one_not_run_row_saying_what_it_needs():
    metrics = {("loop", "a"): {"knn_acc": 0.9}, ("loop", "b"): {"knn_acc": 0.1}}
    rows = evaluate_claim(claim(ACC, needs=("labels", "images")),
                          run_data(metrics, datasets=["loop"], traits={"loop": {"points"}}))
    assert [(r.dataset, r.status) for r in rows] == [(None, NOT_RUN)]
    assert rows[0].reasons == ["no dataset of this run has what the claim needs: labels, images"]
    rows = evaluate_claim(claim(ACC, needs=("labels",)),
                          run_data({}, datasets=["mnist"], models=["a", "b"], traits={"mnist": {"labels"}}))
    assert rows[0].reasons == ["no qualifying dataset (mnist) ran all of a, b"]
    restricted = claim(ACC, needs=("points",), datasets=["torus"])
    assert evaluate_claim(restricted, run_data(metrics, datasets=["loop"]))[0].dataset is None


def test_budget_note_explanation_and_paper_figures_follow_the_row():
    c = claim(ACC, unequal_budget="a's critic makes extra passes",
              explanations=[{"dataset": "mnist", "status": "not held", "text": "budget too small"},
                            {"status": "held", "text": "as in the paper"}],
              paper_figures=[{"dataset": "mnist", "model": "a", "metric": "knn_acc", "value": 0.98,
                              "setting": "MNIST, 1e6 samples", "samples": 1e6, "source": "Table 2"}])
    budgets = {("mnist", "a"): Budget(100, 64, 6400, 3.0), ("mnist", "b"): Budget(100, 64, 6400, 2.0),
               ("svhn", "a"): Budget(50, 64, 3200, 1.0), ("svhn", "b"): Budget(100, 64, 6400, 2.0)}
    metrics = {("mnist", "a"): {"knn_acc": 0.3}, ("mnist", "b"): {"knn_acc": 0.6},
               ("svhn", "a"): {"knn_acc": 0.9}, ("svhn", "b"): {"knn_acc": 0.6}}
    mnist, svhn = evaluate_claim(c, run_data(metrics, datasets=["mnist", "svhn"], budgets=budgets))
    assert (mnist.status, mnist.explanation, mnist.budget_note) == (
        NOT_HELD, "budget too small", "equal: 6,400 samples each")
    assert [f.value for f in mnist.paper_figures] == [0.98] and svhn.paper_figures == []
    assert svhn.explanation == "as in the paper"
    assert svhn.budget_note == "unequal: a 3,200, b 6,400 samples (a's critic makes extra passes)"


def test_paper_side_by_side_shows_numbers_or_words_and_the_budget_ratio():
    from aebench.report.tables import paper_side_by_side

    c = claim(ACC, paper_figures=[
        {"dataset": "mnist", "model": "a", "metric": "knn_acc", "value": 0.98, "setting": "MNIST", "samples": 64000,
         "source": "Table 2"},
        {"dataset": "mnist", "model": "b", "metric": "knn_acc", "reported": "near-perfect (ROC curves)",
         "setting": "MNIST 64x64", "source": "Fig. 4"}])
    budgets = {("mnist", "a"): Budget(100, 64, 6400, 3.0), ("mnist", "b"): Budget(100, 64, 6400, 2.0)}
    rows = evaluate_claim(c, run_data({("mnist", "a"): {"knn_acc": 0.9}, ("mnist", "b"): {"knn_acc": 0.5}},
                                      datasets=["mnist"], budgets=budgets))
    headers, body = paper_side_by_side(rows)["P"]
    assert headers[2:4] == ["Paper", "Ours"]
    assert body[0][:4] == ["a", "knn_acc", "0.980", "0.900"] and body[0][-1] == "0.1×"
    assert body[1][:4] == ["b", "knn_acc", "near-perfect (ROC curves)", "0.500"] and body[1][-1] == "—"
    for both_or_neither in ({"value": 0.5, "reported": "high"}, {}):
        with pytest.raises(ValidationError, match="either `value` or `reported`"):
            PaperFigure.model_validate({"dataset": "d", "model": "a", "metric": "m", "setting": "s", "source": "t",
                                        **both_or_neither})


def test_claims_json_rows_have_the_documented_schema():
    c = claim(ACC, {"metric": "style_acc", "model": "a", "op": "<", "value_from": "1/n_classes", "plus": 0.1})
    run = run_data({("d", "a"): {"knn_acc": [0.9, 0.8, 0.85], "style_acc": float("nan")},
                    ("d", "b"): {"knn_acc": [0.5, 0.55, 0.6]}},
                   n_classes={"d": 10}, budgets={("d", "a"): Budget(10, 8, 80, 0.5), ("d", "b"): None})
    rows = claims_json(evaluate_claims([c], run) + evaluate_claim(claim(ACC, needs=("lines",)), run_data({}, traits={})))
    json.dumps(rows, allow_nan=False)  # strict JSON: no NaN
    keys = {"claim", "paper", "statement", "dataset", "status", "reason", "min_seeds", "checks", "budgets",
            "budget_note", "paper_result", "paper_figures", "explanation"}
    assert all(set(r) == keys for r in rows)
    first, missing = rows
    assert (first["dataset"], first["status"], first["min_seeds"]) == ("d", NOT_RUN, 3)
    held, not_run = first["checks"]
    assert held["status"] == HELD
    assert held["left"] == {"model": "a", "metric": "knn_acc", "seeds": [0, 1, 2], "values": [0.9, 0.8, 0.85],
                            "n": 3, "mean": pytest.approx(0.85), "sd": pytest.approx(0.05)}
    assert held["right"]["values"] == [0.5, 0.55, 0.6] and held["right"]["seeds"] == [0, 1, 2]
    d = held["difference"]
    assert d["mean"] == pytest.approx(0.3) and d["low"] > 0 and d["high"] > d["low"] and d["level"] == 0.95
    assert d["method"] == "paired t over 3 shared seeds" and d["n"] == 3
    assert not_run["left"]["values"] == [] and not_run["left"]["mean"] is None
    assert not_run["right"] == {"text": "1/n_classes = 1/10", "value": pytest.approx(0.1)}
    assert not_run["threshold"] == pytest.approx(0.2) and not_run["why"] == "a: no `style_acc`"
    assert not_run["difference"] is None
    assert first["budgets"] == {"a": {"steps": 10, "batch_size": 8, "samples_seen": 80, "train_seconds": 0.5},
                                "b": None}
    assert (missing["dataset"], missing["status"]) == (None, NOT_RUN) and "lines" in missing["reason"]


# --------------------------------------------------------------------------- over seeds


def test_a_straddling_interval_is_inconclusive_and_a_clear_one_decides():
    noisy = run_data({("d", "a"): {"knn_acc": [0.60, 0.50, 0.70]}, ("d", "b"): {"knn_acc": [0.55, 0.60, 0.52]}})
    row = one_row(claim(ACC), noisy)
    assert row.status == INCONCLUSIVE and row.checks[0].difference.low < 0 < row.checks[0].difference.high
    assert "95% CI" in row.checks[0].interval_text() and "paired t over 3 shared seeds" in row.checks[0].interval_text()
    worse = run_data({("d", "a"): {"knn_acc": [0.40, 0.42, 0.41]}, ("d", "b"): {"knn_acc": [0.60, 0.61, 0.62]}})
    assert one_row(claim(ACC), worse).status == NOT_HELD


def test_too_few_seeds_are_inconclusive_whatever_the_values():
    one_seed = run_data({("d", "a"): {"knn_acc": 0.9}, ("d", "b"): {"knn_acc": 0.1}}, seeds=(0,))
    row = one_row(claim(ACC), one_seed)
    assert row.status == INCONCLUSIVE
    assert row.checks[0].why == "a: 1 seed; b: 1 seed (the claim needs 3)"
    assert row.checks[0].difference.low is None and row.checks[0].difference.mean == pytest.approx(0.8)
    two = run_data({("d", "a"): {"knn_acc": [0.9, 0.91]}, ("d", "b"): {"knn_acc": [0.1, 0.11]}}, seeds=(0, 1))
    assert one_row(claim(ACC), two).status == INCONCLUSIVE
    assert one_row(claim(ACC, min_seeds=2), two).status == HELD  # a claim may ask for fewer


def test_sides_with_different_seeds_use_welch():
    run = run_data({("d", "a"): {"knn_acc": [0.9, 0.91, 0.92]}, ("d", "b"): {"knn_acc": [0.5, 0.52, 0.51]}})
    run.seed_metrics[("d", "b")] = {seed: {"knn_acc": v} for seed, v in zip((3, 4, 5, 6), (0.5, 0.52, 0.51, 0.5))}
    check = one_row(claim(ACC), run).checks[0]
    assert check.status == HELD and check.difference.method == "Welch t (3 vs 4 seeds)"


def test_an_equivalence_margin_at_a_ceiling():
    at_ceiling = {("d", "a"): {"ood_auroc": [0.99990, 0.99992, 0.99989]},
                  ("d", "b"): {"ood_auroc": [0.99997, 0.99996, 0.99998]}}
    strict = {"metric": "ood_auroc", "model": "a", "op": ">=", "other_model": "b"}
    assert one_row(claim(strict), run_data(at_ceiling)).status == NOT_HELD
    margin = {**strict, "tolerance": 0.005, "tolerance_why": "no difference at the ceiling"}
    row = one_row(claim(margin), run_data(at_ceiling))
    assert row.status == HELD and "tolerance 0.005" in row.checks[0].interval_text()
    far_below = {("d", "a"): {"ood_auroc": [0.96, 0.97, 0.965]}, ("d", "b"): {"ood_auroc": [1.0, 1.0, 0.999]}}
    assert one_row(claim(margin), run_data(far_below)).status == NOT_HELD
    with pytest.raises(ValidationError, match="tolerance_why"):
        Check(**{**strict, "tolerance": 0.005})
    with pytest.raises(ValidationError, match="needs `<=` or `>=`"):
        Check(**{**margin, "op": ">"})


def test_explanations_render_their_numbers_from_the_row(tmp_path):
    (tmp_path / "curve.json").write_text(json.dumps({"points": [{"checks": [{"left": 0.0352}]}]}))
    text = ("a {a.knn_acc} ± {a.knn_acc.sd} over {a.knn_acc.n} seeds vs b {b.knn_acc}; other {c.knn_acc}; "
            "difference from {check1.low} to {check1.high}; {budget.a.steps} steps; paper {paper.a.knn_acc}; "
            "curve {curve.points.0.checks.0.left}; absent {a.nothing}")
    c = claim(ACC, explanations=[{"status": "*", "text": text, "sources": {"curve": "curve.json"}}],
              paper_figures=[{"dataset": "d", "model": "a", "metric": "knn_acc", "value": 0.98, "setting": "s",
                              "source": "t"}])
    run = run_data({("d", "a"): {"knn_acc": [0.9, 0.8, 0.85]}, ("d", "b"): {"knn_acc": 0.5},
                    ("d", "c"): {"knn_acc": 0.7}}, models=["a", "b", "c"], budgets={("d", "a"): Budget(300, 64)})
    run.root = tmp_path
    row = evaluate_claims([c], run)[0]
    low, high = row.checks[0].difference.low, row.checks[0].difference.high
    assert row.explanation == (f"a 0.850 ± 0.050 over 3 seeds vs b 0.500; other 0.700; difference from "
                               f"{low:.3f} to {high:.3f}; 300 steps; paper 0.980; curve 0.0352; absent —")


def test_explanation_sources_come_from_the_claims_files_checkout(tmp_path):
    """A re-rendered profile report reads the budget curves committed beside the claims text in
    use, not the older copies in the profile's worktree."""
    from aebench.report.collect import sources_root
    from aebench.report.claims import CLAIMS_FILE

    assert sources_root(CLAIMS_FILE) == Path(__file__).resolve().parents[1]
    (tmp_path / "checkout" / "src").mkdir(parents=True)
    (tmp_path / "checkout" / "pyproject.toml").write_text("")
    (tmp_path / "checkout" / "src" / "claims.yaml").write_text("claims: []")
    assert sources_root(tmp_path / "checkout" / "src" / "claims.yaml") == (tmp_path / "checkout").resolve()
    (tmp_path / "loose.yaml").write_text("claims: []")
    assert sources_root(tmp_path / "loose.yaml") is None


def test_no_typed_number_in_the_packaged_explanations():
    """Every number an explanation states is a field rendered from data (digits inside names,
    3x3 kernels and the like aside)."""
    import re

    for c in load_claims():
        for e in c.explanations:
            prose = re.sub(r"\{[^}]*\}", "", e.text)
            assert not re.findall(r"(?<![\w.])\d+\.\d+|\d{1,3},\d{3}", prose), (c.id, e.dataset, prose)


def test_budget_from_run_json():
    assert Budget.from_run({"steps": 300, "batch_size": 64, "samples_seen": 19200, "train_seconds": 4.5}) == \
        Budget(300, 64, 19200, 4.5)
    assert Budget.from_run({"train_seconds": float("nan"), "steps": True}) == Budget()
    assert Budget.from_run(None) is None
