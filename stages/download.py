"""DVC stage `download@<dataset>`: see aebench.pipeline.download."""

from aebench.stage_entry import run_stage

if __name__ == "__main__":
    run_stage(__file__, "aebench.pipeline:download", "dataset")
