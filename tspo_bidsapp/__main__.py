"""Allow ``python -m tspo_bidsapp``."""

from tspo_bidsapp.cli.run import main

if __name__ == "__main__":
    raise SystemExit(main())
