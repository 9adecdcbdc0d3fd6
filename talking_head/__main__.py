"""``python -m talking_head``: see talking_head.cli."""
import sys

from talking_head.cli import main

if __name__ == "__main__":
    sys.exit(main())
