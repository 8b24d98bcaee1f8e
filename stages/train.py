"""train@<run> and train_on_diffmap@<run>: one model on one dataset, tracked and registered.

A thin script for dvc.yaml; the stage's work is `aebench.stages.train`."""

import sys

from aebench.stages.__main__ import dispatch

if __name__ == "__main__":
    dispatch("train", sys.argv[1:], __file__)
