"""report: the HTML page, summary.md and claims.json.

A thin script for dvc.yaml; the stage's work is `aebench.stages.report`."""

import sys

from aebench.stages.__main__ import dispatch

if __name__ == "__main__":
    dispatch("report", sys.argv[1:], __file__)
