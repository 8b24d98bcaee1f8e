"""preprocess@<dataset>: splits as Parquet, validated by great-expectations.

A thin script for dvc.yaml; the stage's work is `aebench.stages.preprocess`."""

import sys

from aebench.stages.__main__ import dispatch

if __name__ == "__main__":
    dispatch("preprocess", sys.argv[1:], __file__)
