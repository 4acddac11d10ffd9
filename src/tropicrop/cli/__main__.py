"""``python -m tropicrop.cli``: the ``tropicrop`` command."""

import sys

from tropicrop.cli import main

sys.exit(main())
