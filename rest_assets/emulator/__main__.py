"""``python -m rest_assets.emulator`` entry point."""

import sys

from .cli import main

sys.exit(main())
