"""``python -m pyquirk``: the same as the ``pyquirk`` console script (see :mod:`pyquirk.cli`)."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
