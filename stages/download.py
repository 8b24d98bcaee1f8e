"""DVC stage `download@<dataset>`: see aebench.pipeline.download."""

import argparse

from aebench.errors import cli_entry
from aebench.pipeline import download, setup_logging


@cli_entry
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", required=True)
    args = parser.parse_args()
    setup_logging()
    download(args.dataset)


if __name__ == "__main__":
    main()
