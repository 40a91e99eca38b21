#!/bin/sh
# Launcher for the Claude Code plugin: run the best keycard-hook available, and fail closed when there is none.
# Usage: sh keycard-hook.sh claude|cursor|codex|gemini [shim options]
here=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)
data=${XDG_DATA_HOME:-$HOME/.local/share}/keycard/bin/keycard-hook
for shim in "$here/keycard-hook" "$data"; do
  if [ -x "$shim" ]; then exec "$shim" "$@"; fi
done
if command -v keycard-hook >/dev/null 2>&1; then exec keycard-hook "$@"; fi
if command -v keycardctl >/dev/null 2>&1; then exec keycardctl agent hook "$@"; fi
# Nothing to run. The options are the shim's (it is not here to check them), except --help, answered here too.
agent=claude
case "${1:-}" in -*|"") ;; *) agent=$1 ;; esac
for arg in "$@"; do
  case "$arg" in
    -h|--help)
      echo "usage: keycard-hook.sh claude|cursor|codex|gemini [keycard-hook options] (no keycard-hook is installed yet)"
      exit 0 ;;
    --claude|--cursor) agent=${arg#--} ;;
  esac
done
# Deny gates with the fix, in the event's own shape, rather than letting the agent treat a failure as "go ahead".
# Observe-only events get what they expect (nothing for Claude Code, `{}` for Cursor).
payload=$(cat)
event=$(printf '%s\n' "$payload" | sed -n 's/.*"hook_event_name"[[:space:]]*:[[:space:]]*"\([A-Za-z]*\)".*/\1/p' | head -n 1)
reason="keycardd is not installed: install it from its checkout (make run, or pip install PATH-TO-CHECKOUT) and run \`keycardctl install $agent\`"
case "$agent" in
  gemini)  # Gemini honours only {"decision":"deny"}: a Claude-shaped deny would let the call run
    case "$event" in
      BeforeTool|BeforeAgent|"") printf '{"decision":"deny","reason":"%s"}' "$reason" ;;
      *) ;;
    esac ;;
  cursor)
    case "$event" in
      beforeSubmitPrompt) printf '{"continue":false,"user_message":"%s"}' "$reason" ;;
      before*|pre*|subagentStart|"") printf '{"permission":"deny","user_message":"%s","agent_message":"%s"}' "$reason" "$reason" ;;
      *) printf '{}' ;;
    esac ;;
  *)
    case "$event" in
      PermissionRequest) printf '{"hookSpecificOutput":{"hookEventName":"PermissionRequest","decision":{"behavior":"deny","message":"%s"}}}' "$reason" ;;
      UserPromptSubmit) printf '{"decision":"block","reason":"%s"}' "$reason" ;;
      PreToolUse|"") printf '{"hookSpecificOutput":{"hookEventName":"PreToolUse","permissionDecision":"deny","permissionDecisionReason":"%s"}}' "$reason" ;;
      *) ;;
    esac ;;
esac
