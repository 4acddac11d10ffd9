"""``python -m tropicrop``: the ``tropicrop`` command."""

import sys

from tropicrop.cli import main

sys.exit(main())
