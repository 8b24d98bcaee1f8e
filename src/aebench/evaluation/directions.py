"""Which way is better for every key of `metrics.json`, and which keys are the key metrics.

`DIRECTIONS` joins, in this order, the shared suites' metrics (`aebench.metrics.DIRECTIONS`),
the metrics every registered model declares for its own suites (`own_metrics.directions`,
models in name order) and the evaluator's timings. The report marks the best model per
column with it and `aebench promote` decides whether a new version beats the champion.
`key_metrics()` is what `aebench models` shows: the shared `KEY_METRICS` and the models'.

This module imports no model: `DIRECTIONS` is joined on its first lookup, so importing it
(the report, the CLI) does not load torch until a direction is needed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from aebench.metrics import DIRECTIONS as SHARED_DIRECTIONS

TIMING_DIRECTIONS: dict[str, str] = {
    "train_seconds": "min",
    "train_samples_per_s": "max",
    "eval_seconds": "min",
}
KEY_METRICS = ("knn_acc", "linear_acc", "recon_mse", "neg_elbo", "interp_mean_distance", "dci_disentanglement",
               "ood_auroc", "gw_distance")


class _Directions(Mapping[str, str]):
    """A read-only metric -> "max" | "min" mapping, joined on first use (module docs)."""

    def __init__(self) -> None:
        self._joined: dict[str, str] | None = None

    def _table(self) -> dict[str, str]:
        if self._joined is None:
            # importing the models loads torch (seconds); only lookups pay for it
            from aebench.models import metric_directions

            joined = dict(SHARED_DIRECTIONS)
            for metric, how in {**metric_directions(), **TIMING_DIRECTIONS}.items():
                if joined.setdefault(metric, how) != how:
                    raise RuntimeError(f"metric {metric!r} is declared both {joined[metric]!r} and {how!r}")
            self._joined = joined
        return self._joined

    def __getitem__(self, metric: str) -> str:
        return self._table()[metric]

    def __iter__(self) -> Iterator[str]:
        return iter(self._table())

    def __len__(self) -> int:
        return len(self._table())


DIRECTIONS: Mapping[str, str] = _Directions()


def key_metrics() -> tuple[str, ...]:
    """The shared key metrics, then every registered model's."""
    from aebench.models import key_metrics as model_key_metrics  # loads torch, as above

    return KEY_METRICS + tuple(k for k in model_key_metrics() if k not in KEY_METRICS)
