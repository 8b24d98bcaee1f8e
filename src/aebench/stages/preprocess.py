"""`preprocess@<dataset>`: split `data/raw/<dataset>/` into train/val/test Parquet files under
`data/processed/<dataset>/` and validate them (`aebench.data.expectations`)."""

from __future__ import annotations

import logging
from pathlib import Path

from aebench import paths
from aebench.data.expectations import validate_or_raise
from aebench.data.parquet import read_split, write_processed
from aebench.data.raw import load_raw
from aebench.plan import check_names, params_for_stage
from aebench.stages import stage_main

log = logging.getLogger(__name__)


def run(dataset: str, root: Path | None = None) -> Path:
    """Split and validate one dataset into data/processed/<dataset>/."""
    root = root or paths.repo_root()
    params = params_for_stage(root)
    check_names(params, dataset)
    raw = load_raw(paths.raw_dir(dataset, root))
    out = paths.processed_dir(dataset, root)
    options = params.data.options_for(dataset)
    write_processed(raw, dataset, out, seed=params.data.seed, val_fraction=params.data.val_fraction,
                    test_fraction=params.data.test_fraction, group_factor=options.group_factor)
    splits = {name: read_split(out / f"{name}.parquet", check=False) for name in ("train", "val", "test")}
    first = splits["train"]
    validate_or_raise(splits, kind=first.kind, shape=first.shape, n_classes=first.n_classes,
                      balance_tolerance=params.data.balance_tolerance, report_path=out / "validation.json")
    log.info("%s: splits %s validated", dataset, {k: len(v.index) for k, v in splits.items()})
    return out


def main(argv: list[str] | None = None) -> None:
    stage_main(run, "dataset", argv=argv)


if __name__ == "__main__":
    main()
