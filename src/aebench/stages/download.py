"""`download@<dataset>`: generate an embedded dataset, or fetch a real one through `data.mirror`
(or the official sources), into `data/raw/<dataset>/`."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from aebench import paths
from aebench.data.raw import save_raw
from aebench.data.registry import EMBEDDED, generate, load_real
from aebench.plan import check_names, params_for_stage
from aebench.stages import stage_main

log = logging.getLogger(__name__)


def run(dataset: str, root: Path | None = None) -> Path:
    """Download (or generate) one dataset into data/raw/<dataset>/."""
    root = root or paths.repo_root()
    params = params_for_stage(root)
    check_names(params, dataset)
    out = paths.raw_dir(dataset, root)
    t0 = time.perf_counter()
    options = params.data.options_for(dataset)
    if dataset in EMBEDDED:
        raw = generate(dataset, options.n, params.data.seed, options.generator_options(), where=str(root / "params.yaml"))
    else:
        mirror = params.data.mirror_for(dataset)
        if mirror and "://" not in mirror and not Path(mirror).is_absolute():
            mirror = str((root / mirror).resolve())
        # A real dataset is cut to `data.options.<dataset>.n` only where params.yaml sets it.
        n = options.n if "n" in options.model_fields_set else None
        raw = load_real(dataset, out / "files", mirror, n=n, seed=params.data.seed, **options.image_options())
    save_raw(raw, out)
    log.info("%s: %d items %s written to %s in %.1fs", dataset, len(raw), tuple(raw.x.shape[1:]), out, time.perf_counter() - t0)
    return out


def main(argv: list[str] | None = None) -> None:
    stage_main(run, "dataset", argv=argv)


if __name__ == "__main__":
    main()
