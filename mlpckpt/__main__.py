"""``python -m mlpckpt`` is the ``mlpckpt`` command."""

import sys

from .cli._main import main

sys.exit(main())
