"""DVC stage `diffmap@<dataset>`: see aebench.diffmap_stage.run."""

import argparse

from aebench.diffmap_stage import run
from aebench.errors import cli_entry
from aebench.pipeline import setup_logging


@cli_entry
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", required=True)
    args = parser.parse_args()
    setup_logging()
    run(args.dataset)


if __name__ == "__main__":
    main()
