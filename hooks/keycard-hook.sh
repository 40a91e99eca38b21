#!/bin/sh
# Launcher for the Claude Code plugin: run the best keycard-hook available, and fail closed when there is none.
# Usage: sh keycard-hook.sh claude|cursor [shim options]
here=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)
data=${XDG_DATA_HOME:-$HOME/.local/share}/keycard/bin/keycard-hook
for shim in "$here/keycard-hook" "$data"; do
  if [ -x "$shim" ]; then exec "$shim" "$@"; fi
done
if command -v keycard-hook >/dev/null 2>&1; then exec keycard-hook "$@"; fi
if command -v keycardctl >/dev/null 2>&1; then exec keycardctl agent hook "$@"; fi
# Nothing to run: deny gates with the fix, rather than letting Claude Code treat a failure as "go ahead".
cat >/dev/null
reason='keycardd is not installed: install it (pipx install keycardd) and run `keycardctl install claude`'
case "$1" in
  cursor) printf '{"permission":"deny","user_message":"%s","agent_message":"%s"}' "$reason" "$reason" ;;
  *) printf '{"hookSpecificOutput":{"hookEventName":"PreToolUse","permissionDecision":"deny","permissionDecisionReason":"%s"}}' "$reason" ;;
esac
