"""DVC stage `train@<dataset>-<model>`: see aebench.pipeline.train."""

import argparse

from aebench.errors import cli_entry
from aebench.pipeline import train, setup_logging


@cli_entry
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--model", required=True)
    args = parser.parse_args()
    setup_logging()
    train(args.dataset, args.model)


if __name__ == "__main__":
    main()
