"""diffmap@<dataset>: the diffusion map of a dataset that a run trains on.

A thin script for dvc.yaml; the stage's work is `aebench.stages.diffmap`."""

import sys

from aebench.stages.__main__ import dispatch

if __name__ == "__main__":
    dispatch("diffmap", sys.argv[1:], __file__)
