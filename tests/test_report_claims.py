"""The claims table: the packaged claims.yaml, and held / not held / not run on known numbers."""

from __future__ import annotations

import ast
import math

import pytest
import yaml

from report_fake_tree import write_parquet_meta

from aebench.errors import UserError
from aebench.metrics import DIRECTIONS
from aebench.report.claims import (CLAIMS_FILE, HELD, NOT_HELD, NOT_RUN, Check, Claim, RunData, evaluate_claim,
                                   load_claims, read_n_classes)


def run_data(metrics: dict[tuple[str, str], dict | None], datasets=("d",), models=None, n_classes=None) -> RunData:
    models = models if models is not None else sorted({m for _, m in metrics})
    return RunData(datasets=list(datasets), models=list(models), metrics=metrics, n_classes=n_classes or {})


def claim(*checks: dict, dataset: str = "d") -> Claim:
    return Claim(id="c", paper="P", statement="S", dataset=dataset, checks=[Check(**c) for c in checks])


# --------------------------------------------------------------------------- the packaged file


def test_packaged_claims_load_and_cover_the_five_papers():
    claims = load_claims()
    papers = {c.paper.split(" ")[0] for c in claims}
    assert {"ACAI", "ACN", "GWAE", "DVAE", "ML-VAE"} <= papers
    import yaml
    from pathlib import Path

    params = yaml.safe_load((Path(__file__).resolve().parents[1] / "params.yaml").read_text())
    assert {c.dataset for c in claims} <= set(params["datasets"])  # every claim is tested by `make repro`


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
    held = evaluate_claim(c, run_data({("d", "acai"): {"interp_smoothness": 0.1}, ("d", "ae"): {"interp_smoothness": 0.44}}))
    assert held.status == HELD
    assert held.checks[0].describe() == "interp_smoothness: acai 0.100 < ae 0.440"
    failed = evaluate_claim(c, run_data({("d", "acai"): {"interp_smoothness": 0.5}, ("d", "ae"): {"interp_smoothness": 0.44}}))
    assert failed.status == NOT_HELD and failed.reasons == []


def test_ties_hold_only_for_non_strict_ops():
    metrics = {("d", "a"): {"ood_auroc": 0.8}, ("d", "b"): {"ood_auroc": 0.8}}
    assert evaluate_claim(claim({"metric": "ood_auroc", "model": "a", "op": ">=", "other_model": "b"}),
                          run_data(metrics)).status == HELD
    assert evaluate_claim(claim({"metric": "ood_auroc", "model": "a", "op": ">", "other_model": "b"}),
                          run_data(metrics)).status == NOT_HELD


def test_other_metric_of_the_same_model_with_a_margin():
    c = claim({"metric": "content_acc", "model": "m", "op": ">", "other_metric": "style_acc"},
              {"metric": "style_acc", "model": "m", "op": "<", "other_metric": "chance_acc", "plus": 0.1})
    result = evaluate_claim(c, run_data({("d", "m"): {"content_acc": 0.9, "style_acc": 0.15, "chance_acc": 0.11}}))
    assert result.status == HELD
    assert result.checks[0].describe() == "m: content_acc 0.900 > style_acc 0.150"
    assert result.checks[1].describe() == "m: style_acc 0.150 < chance_acc 0.110 + 0.1 (0.210)"
    assert math.isclose(result.checks[1].threshold, 0.21)
    # style 0.25 is not within 0.1 of chance 0.11
    result = evaluate_claim(c, run_data({("d", "m"): {"content_acc": 0.9, "style_acc": 0.25, "chance_acc": 0.11}}))
    assert [r.status for r in result.checks] == [HELD, NOT_HELD] and result.status == NOT_HELD


def test_fixed_value_and_chance_from_n_classes():
    metrics = {("d", "m"): {"style_acc": 0.18}}
    fixed = claim({"metric": "style_acc", "model": "m", "op": "<", "value": 0.2})
    assert evaluate_claim(fixed, run_data(metrics)).status == HELD
    chance = claim({"metric": "style_acc", "model": "m", "op": "<", "value_from": "1/n_classes", "plus": 0.05})
    result = evaluate_claim(chance, run_data(metrics, n_classes={"d": 10}))
    assert result.status == NOT_HELD  # 0.18 is not below 0.1 + 0.05
    assert result.checks[0].describe() == "style_acc: m 0.180 < 1/n_classes = 1/10 + 0.05 (0.150)"
    assert evaluate_claim(chance, run_data(metrics, n_classes={"d": 4})).status == HELD  # 0.18 < 0.30
    unknown = evaluate_claim(chance, run_data(metrics))
    assert unknown.status == NOT_RUN and "number of classes" in unknown.reasons[0]


@pytest.mark.parametrize("metrics, datasets, models, reason", [
    ({("d", "a"): {"x": 1.0}, ("d", "b"): {"x": 2.0}}, ("other",), ("a", "b"), "dataset `d` is not in this run's `datasets`"),
    ({("d", "a"): {"x": 1.0}}, ("d",), ("a",), "b: not in this run's `models`"),
    ({("d", "a"): {"x": 1.0}}, ("d",), ("a", "b"), "b: not planned on `d` (no `d-b` in `runs`)"),
    ({("d", "a"): {"x": 1.0}, ("d", "b"): None}, ("d",), ("a", "b"), "b: not evaluated on `d`"),
    ({("d", "a"): {"x": 1.0}, ("d", "b"): {"y": 2.0}}, ("d",), ("a", "b"), "b: no `x`"),
    ({("d", "a"): {"x": 1.0}, ("d", "b"): {"x": None}}, ("d",), ("a", "b"), "b: no `x`"),
    ({("d", "a"): {"x": float("nan")}, ("d", "b"): {"x": 2.0}}, ("d",), ("a", "b"), "a: no `x`"),
    ({("d", "a"): {}, ("d", "b"): {}}, ("d",), ("a", "b"), "a, b: no `x`"),
])
def test_not_run_says_why(metrics, datasets, models, reason):
    result = evaluate_claim(claim({"metric": "x", "model": "a", "op": "<", "other_model": "b"}),
                            run_data(metrics, datasets, models))
    assert result.status == NOT_RUN
    assert result.reasons == [reason]


def test_a_failed_check_outranks_a_missing_one():
    c = claim({"metric": "x", "model": "a", "op": "<", "other_model": "b"},
              {"metric": "y", "model": "a", "op": "<", "other_model": "b"})
    result = evaluate_claim(c, run_data({("d", "a"): {"x": 3.0}, ("d", "b"): {"x": 2.0}}))
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
    path.write_text(yaml.safe_dump({"claims": [{"id": "c", "paper": "P", "statement": "S", "dataset": "d",
                                                "checks": [check]}]}))
    with pytest.raises(UserError, match=message) as info:
        load_claims(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_duplicate_ids_and_bad_yaml(tmp_path):
    one = {"id": "c", "paper": "P", "statement": "S", "dataset": "d",
           "checks": [{"metric": "x", "model": "a", "op": "<", "value": 1}]}
    path = tmp_path / "claims.yaml"
    path.write_text(yaml.safe_dump({"claims": [one, one]}))
    with pytest.raises(UserError, match="duplicate claim ids: c"):
        load_claims(path)
    path.write_text("claims: [unclosed")
    with pytest.raises(UserError, match="not valid YAML"):
        load_claims(path)


def test_n_classes_from_parquet_schema_metadata(tmp_path):
    write_parquet_meta(tmp_path / "digits", 10)
    assert read_n_classes(tmp_path / "digits") == 10
    assert read_n_classes(tmp_path / "absent") is None
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "train.parquet").write_bytes(b"not parquet")
    assert read_n_classes(tmp_path / "broken") is None
