"""evaluate@<run>: every metric and figure of one trained model.

A thin script for dvc.yaml; the stage's work is `aebench.stages.evaluate`."""

import sys

from aebench.stages.__main__ import dispatch

if __name__ == "__main__":
    dispatch("evaluate", sys.argv[1:], __file__)
