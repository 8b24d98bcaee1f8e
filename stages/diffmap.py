"""DVC stage `diffmap@<dataset>`: see aebench.diffmap_stage.run."""

from aebench.stage_entry import run_stage

if __name__ == "__main__":
    run_stage(__file__, "aebench.diffmap_stage:run", "dataset")
