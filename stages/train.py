"""DVC stage `train@<dataset>-<model>`: see aebench.pipeline.train."""

from aebench.stage_entry import run_stage

if __name__ == "__main__":
    run_stage(__file__, "aebench.pipeline:train", "dataset", "model")
