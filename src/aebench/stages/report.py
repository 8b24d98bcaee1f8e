"""`report`: the HTML and Markdown report of every run (`aebench.report`), under `reports/`."""

from __future__ import annotations

import logging
from pathlib import Path

from aebench import paths
from aebench.plan import params_for_stage
from aebench.report.build import build_report
from aebench.stages import stage_main

log = logging.getLogger(__name__)


def run(root: Path | None = None) -> tuple[Path, Path]:
    """Build reports/ from the pipeline's outputs."""
    root = root or paths.repo_root()
    params_for_stage(root)
    html, markdown = build_report(root)
    log.info("report: %s and %s", html, markdown)
    return html, markdown


def main(argv: list[str] | None = None) -> None:
    stage_main(run, argv=argv)


if __name__ == "__main__":
    main()
