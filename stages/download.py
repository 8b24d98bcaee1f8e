"""download@<dataset>: one dataset's raw files, from its source or `data.mirror`.

A thin script for dvc.yaml; the stage's work is `aebench.stages.download`."""

import sys

from aebench.stages.__main__ import dispatch

if __name__ == "__main__":
    dispatch("download", sys.argv[1:], __file__)
