from aebench.report.figures import render_claim_seeds


def side(model, values, metric="ood_auroc"):
    return {"model": model, "metric": metric, "seeds": list(range(len(values))), "values": values, "n": len(values)}


PAIRED = {"claim": "gwae-gmp-ood", "dataset": "mnist", "status": "held", "checks": [
    {"text": "ood_auroc: gwae_gmp >= vae", "status": "held", "op": ">=", "plus": 0.0,
     "left": side("gwae_gmp", [0.9991, 0.9997, 0.9999]), "right": side("vae", [0.9985, 0.9990, 0.9996])},
]}

FIXED = {"claim": "codes-classify", "dataset": "mnist", "status": "not held", "checks": [
    {"text": "accuracy: ae > 1/n_classes", "status": "not held", "op": ">", "plus": 0.05,
     "left": side("ae", [0.12, 0.14, 0.11], "accuracy"), "right": {"text": "1/n_classes = 1/10", "value": 0.1}},
]}


def test_paired_and_fixed_render_png(tmp_path):
    for row in (PAIRED, FIXED):
        png = render_claim_seeds(row)
        assert png is not None and png.startswith(b"\x89PNG")


def test_all_missing_gives_none():
    row = {"claim": "x", "dataset": "mnist", "status": "not run", "checks": [
        {"text": "m", "status": "not run", "op": ">=", "plus": 0.0,
         "left": side("a", [None, None]), "right": side("b", [])},
        {"text": "m", "status": "not run", "op": ">", "plus": 0.0,
         "left": side("a", []), "right": {"text": "1/10", "value": None}},
    ]}
    assert render_claim_seeds(row) is None
    assert render_claim_seeds({"claim": "x", "checks": []}) is None


def test_none_values_inside_lists_do_not_raise():
    row = {"claim": "x", "dataset": "mnist", "status": "inconclusive", "checks": [
        {"text": "m", "status": "inconclusive", "op": ">=", "plus": 0.0,
         "left": side("a", [0.5, None, 0.7]), "right": side("b", [None, 0.6, float("nan")])},
        {"text": "m", "status": "not run", "op": ">=", "plus": 0.0,
         "left": side("a", [None]), "right": side("b", [])},
    ]}
    assert render_claim_seeds(row).startswith(b"\x89PNG")
