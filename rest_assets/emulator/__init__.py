"""Fast, deterministic local HTTP emulator of five REST APIs.

Standalone: imports nothing from the rest of ``rest_assets``. Usage::

    from rest_assets.emulator import Emulator, EmulatorConfig
    with Emulator(EmulatorConfig(seed=0)) as emu:
        emu.base_url("help_desk")   # http://127.0.0.1:PORT/help_desk
        emu.truth("help_desk", "conversations")

or ``python -m rest_assets.emulator --port 8765``.
"""

from .cli import main
from .config import DEMO_CREDENTIALS, EmulatorConfig
from .emulator import Emulator
from .schema import FIELDS

__all__ = ["DEMO_CREDENTIALS", "Emulator", "EmulatorConfig", "FIELDS", "main"]
