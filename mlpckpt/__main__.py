"""``python -m mlpckpt`` is the ``mlpckpt`` command."""

import sys

from .cli import main

sys.exit(main())
