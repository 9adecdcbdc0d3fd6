"""``python -m talking_head``: see talking_head.cli."""
import sys

from talking_head.cli import main
from talking_head.native_logs import filter_native_stderr

if __name__ == "__main__":
    filter_native_stderr()
    sys.exit(main())
