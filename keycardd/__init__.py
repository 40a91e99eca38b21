"""keycardd: an open, local agent-hook daemon that decides coding-agent tool calls with Cedar policy."""

__version__ = "0.1.0"
