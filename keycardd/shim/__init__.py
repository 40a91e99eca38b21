"""The hook shims, shipped inside the package so a wheel carries them: `keycard-hook.c` (compiled at install time
where a compiler exists) and `keycard_hook.py` (the stdlib-only fallback), which hooks run through its launcher
`keycard-hook.py` so its bytecode is cached. `hooks/` in the repository links here."""

from pathlib import Path

SHIM_DIR = Path(__file__).resolve().parent
C_SOURCE = SHIM_DIR / "keycard-hook.c"
PYTHON_LAUNCHER = SHIM_DIR / "keycard-hook.py"
