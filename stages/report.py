"""DVC stage `report`: see aebench.pipeline.report."""

from aebench.errors import cli_entry
from aebench.pipeline import report, setup_logging


@cli_entry
def main() -> None:
    setup_logging()
    html, md = report()
    print(f"report: {html} and {md}")


if __name__ == "__main__":
    main()
