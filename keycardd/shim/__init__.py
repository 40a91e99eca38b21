"""The hook shims, shipped inside the package so a wheel carries them: `keycard-hook.c` (compiled at install time
where a compiler exists) and `keycard_hook.py` (the stdlib-only fallback). `hooks/` in the repository links here."""

from pathlib import Path

SHIM_DIR = Path(__file__).resolve().parent
C_SOURCE = SHIM_DIR / "keycard-hook.c"
PYTHON_SHIM = SHIM_DIR / "keycard_hook.py"
