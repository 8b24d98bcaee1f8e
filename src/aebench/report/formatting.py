"""How numbers, durations, captions and best values look in the report (HTML and Markdown alike)."""

from __future__ import annotations

import math
import re
from typing import Any, Iterable

from aebench.evaluation.directions import DIRECTIONS

MISSING = "—"
ARROWS = {"max": "↑", "min": "↓"}
DIRECTION_WORDS = {"max": "higher is better", "min": "lower is better"}
CAPTION_WORDS = {"2d": "2D", "3d": "3D", "roc": "ROC", "pca": "PCA", "tsne": "t-SNE", "umap": "UMAP", "ood": "OoD"}


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_finite(value: Any) -> bool:
    return is_number(value) and math.isfinite(value)


def _is_unit_metric(metric: str | None) -> bool:
    """Metrics on [0, 1] (accuracies, AUROC, NMI...), always shown with 3 decimals."""
    if not metric:
        return False
    return (
        metric.endswith("_acc")
        or "_acc_" in metric
        or metric.startswith(("dci_", "ood_auroc"))
        or metric in {"nmi", "mig", "trustworthiness"}
    )


def format_value(value: Any, metric: str | None = None) -> str:
    """Human-readable number: 3 decimals for accuracies, fewer decimals for large values.

    None and NaN give "—"; infinities give "∞"/"−∞"; non-numbers are shown as text.
    """
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value:,}"
    if not isinstance(value, float):
        return str(value)
    if math.isnan(value):
        return MISSING
    if math.isinf(value):
        return "∞" if value > 0 else "−∞"
    if _is_unit_metric(metric) and abs(value) <= 1.0:
        return f"{value:.3f}"
    magnitude = abs(value)
    if magnitude == 0:
        return "0"
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.1f}"
    if magnitude >= 10:
        return f"{value:.2f}"
    if magnitude >= 1:
        return f"{value:.3f}"
    if magnitude >= 1e-4:
        # Three significant digits, at least three decimals: 0.500, 0.0234, 0.00123.
        decimals = max(3, 2 - math.floor(math.log10(magnitude)))
        return f"{value:.{decimals}f}"
    return f"{value:.2e}"


def format_mean_sd(mean: float | None, sd: float | None, metric: str | None = None, digits: int | None = None) -> str:
    """'0.9999 ± 0.00003': the mean to the decimals its spread needs (two significant digits
    of the sd, at least the metric's usual ones), or `digits` significant digits when given."""
    if digits is not None and is_finite(mean):
        text = f"{mean:.{digits}g}"
    else:
        text = format_value(mean, metric)
    if not is_finite(sd) or not is_finite(mean):
        return text
    sd = 0.0 if sd <= 1e-12 * abs(mean) else sd  # equal values: the rest is rounding
    if sd > 0 and digits is None:
        decimals = max(1 - math.floor(math.log10(sd)), 0)
        if abs(mean) < 1000 and decimals > len(text.partition(".")[2]):
            text = f"{mean:.{min(decimals, 8)}f}"
    return f"{text} ± {f'{sd:.2g}' if sd else '0'}"


def format_duration(seconds: Any) -> str:
    if not is_finite(seconds):
        return MISSING
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        minutes, secs = divmod(int(round(seconds)), 60)
        return f"{minutes} min {secs:02d} s"
    hours, rest = divmod(int(round(seconds)), 3600)
    return f"{hours} h {rest // 60:02d} min"


def caption(stem: str) -> str:
    """'reconstructions' -> 'Reconstructions', 'codes_2d' -> 'Codes 2D'."""
    words = [w for w in re.split(r"[_\-\s]+", stem) if w]
    if not words:
        return stem
    words = [CAPTION_WORDS.get(w.lower(), w) for w in words]
    first = words[0]
    words[0] = first[:1].upper() + first[1:]
    return " ".join(words)


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "x"


def short(value: Any, n: int) -> str:
    """Long hex ids (commits, hashes) cut to n characters; anything else unchanged."""
    if value is None or value == "":
        return MISSING
    text = str(value)
    return text[:n] if re.fullmatch(r"[0-9a-fA-F]+", text) and len(text) > n else text


def header_label(metric: str) -> str:
    """'recon_mse ↓': the metric with the arrow of its direction, if known."""
    arrow = ARROWS.get(DIRECTIONS.get(metric, ""), "")
    return f"{metric} {arrow}" if arrow else metric


def best_models(values: dict[str, Any], how: str | None) -> set[str]:
    """Names holding the best finite value of one column ('max' or 'min'); ties all win.

    Nothing is marked for unknown directions or when fewer than two models have a value.
    """
    if how not in ("max", "min"):
        return set()
    finite = {name: float(v) for name, v in values.items() if is_finite(v)}
    if len(finite) < 2:
        return set()
    target = max(finite.values()) if how == "max" else min(finite.values())
    return {name for name, v in finite.items() if v == target or math.isclose(v, target, rel_tol=1e-12)}


def order_columns(keys: Iterable[str]) -> list[str]:
    """Known metrics in DIRECTIONS order, then unknown ones alphabetically."""
    keys = set(keys)
    known = [k for k in DIRECTIONS if k in keys]
    return known + sorted(keys - set(known))
