"""DVC stage `evaluate@<dataset>-<model>`: see aebench.pipeline.evaluate."""

from aebench.stage_entry import run_stage

if __name__ == "__main__":
    run_stage(__file__, "aebench.pipeline:evaluate", "dataset", "model")
