"""keycard-hook's Python entry point: `python3 -I -S keycard-hook.py claude|cursor [options]`.

It imports keycard_hook.py from its own directory instead of running it, because Python caches the bytecode of
imported modules but never of a script run as `__main__`: compiling the shim on every tool call would cost more
than everything else it does. `-I` leaves the script's directory off sys.path, so it is appended: last, so that a
stray `os.py` or `_socket.py` beside the shim can never stand in for the standard library's.
"""

import sys

sys.path.append(__file__.rpartition("/")[0])
from keycard_hook import main

sys.exit(main())
