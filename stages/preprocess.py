"""DVC stage `preprocess@<dataset>`: see aebench.pipeline.preprocess."""

import argparse

from aebench.errors import cli_entry
from aebench.pipeline import preprocess, setup_logging


@cli_entry
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", required=True)
    args = parser.parse_args()
    setup_logging()
    preprocess(args.dataset)


if __name__ == "__main__":
    main()
