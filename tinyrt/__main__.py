"""``python -m tinyrt``: the ``tinyrt`` command (see tinyrt/cli/)."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
