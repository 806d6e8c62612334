"""``python -m mlpckpt.bench --child CONFIG``: the entry point of the
bench's child processes (internal; use ``mlpckpt bench``)."""

import sys

from .children import child_main

sys.exit(child_main(sys.argv[1:]))
