"""DVC stage `evaluate@<dataset>-<model>`: see aebench.pipeline.evaluate."""

import argparse

from aebench.errors import cli_entry
from aebench.pipeline import evaluate, setup_logging


@cli_entry
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--model", required=True)
    args = parser.parse_args()
    setup_logging()
    evaluate(args.dataset, args.model)


if __name__ == "__main__":
    main()
