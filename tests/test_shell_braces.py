"""Brace expansion and field splitting, compared with real bash byte for byte.

For every word of the corpus (hand-written edge cases and seeded generated words), real bash runs
`printf '%s\\0' WORD` with HOME set to a test directory, and the analysis of the same line must give exactly the
same arguments, or say the word is unknown (dynamic: allowed only where the module says so, e.g. past the cap).
The analysis keeps an unquoted `~` as spelt (paths resolve it canonically), so its `~` and `~/` are expanded here
before the comparison; the generator never puts a quoted `~` first or a user name after `~`.
"""

from __future__ import annotations

import random
import shutil
import subprocess
from pathlib import Path

import pytest

from keycardd.shell import analyze
from keycardd.shell._braces import MAX_WORDS

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")

EDGE_CASES = [
    "{a,b}", "a{b,c}d", "{a,b}{c,d}", "a{b{c,d}e,f}g", "{a,{b,c}}", "{,}", "x{,}", "{,a,}", "{a}", "{}", "a{}b",
    "{{a,b}}", "{a,b}}", "{{a,b}", "{a,b", "a}b{c,d}", "{1..3}", "{3..1}", "{1..1}", "{01..10..3}", "{-05..3..4}",
    "{1..10..0}", "{+1..3}", "{1..3.}", "{1...}", "{a..}", "{a..e}", "{a..e..2}", "{e..a}", "{Z..a..3}", "{1..a}",
    "{04294967296..04294967297}", "{1..2}{a..b}x", "{a..c}{1..2}", '"{a,b}"', "'{a,b}'", "\\{a,b}", "{a\\,b,c}",
    '{"a,b",c}', "{'x y',z}", "{$HOME,x}", "${HOME}{a,b}", "{a,b}$HOME", '"$HOME"{a,b}', "{~,x}/y", "~/{a,b}",
    "x={a,b}", "--opt={a,b}", "{a..c..-1}", "{-3..3..2}", "{0..0}", "{_..a}", "{a..Z..2}", "a{1..3}b{x,y}c",
    "{a..A}", "$HOME{a,b}", "x$a{b,c}", "{$HOME,x}y", "${HOME}{a,b}",
    "{.,..}", "{..,.}", "{a..b,c}", "{1..3,x}", "{a,b}{}", "{}{a,b}", "{,{,}}",
    "$IFS", "a${IFS}b", "${IFS}a", "a${IFS}", "${IFS}", '"${IFS}"', 'a"${IFS}"b', "$HOME${IFS}x", "x${IFS}${IFS}y",
    "''$IFS''", "\"\"${IFS}x", "{a,b}${IFS}c", "{a${IFS}b,c}",
]  # fmt: skip

PIECES = ["{", "}", ",", "..", "a", "b", "1", "0", "9", "-", "/", "x", "'q,r'", '"s t"', "\\,", "\\{", "\\}",
          "$HOME", "${HOME}", "$IFS", "${IFS}", "''", "{a,b}", "{1..3}", "{0..2..2}", "."]  # fmt: skip


def generated_words(seed: int, count: int) -> list[str]:
    rng = random.Random(seed)
    words = []
    while len(words) < count:
        word = "".join(rng.choice(PIECES) for _ in range(rng.randint(1, 8)))
        if "~" not in word:
            words.append(word)
    return words


def bash_words(words: list[str], home: Path, cwd: Path) -> list[list[str]]:
    """Each word's arguments as real bash gives them to printf (one bash process for the whole list)."""
    script = "".join(f"printf '%s\\0' - {word}; printf '\\1\\0'\n" for word in words)
    result = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", script],
        cwd=cwd,
        env={"HOME": str(home), "PATH": "/usr/bin:/bin", "LC_ALL": "C"},
        capture_output=True,
        check=True,
        timeout=60,
    )
    outputs = result.stdout.split(b"\x01\x00")
    assert len(outputs) == len(words) + 1, result.stderr
    return [[arg.decode() for arg in output.split(b"\x00")[1:-1]] for output in outputs[:-1]]


def analysis_words(word: str, home: Path, cwd: Path) -> list[str] | None:
    """The arguments the analysis gives printf, `~` expanded; None when it says a word is only known at run time."""
    analysis = analyze(f"printf '%s\\0' {word}", cwd=str(cwd), home=str(home))
    assert analysis.error is None, analysis.error
    [command] = analysis.commands
    if "args" in command.unknowns:
        return None
    return [str(home) + arg[1:] if arg == "~" or arg.startswith("~/") else arg for arg in command.args[1:]]


@pytest.fixture(scope="module")
def places(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("braces")
    (root / "home").mkdir()
    (root / "cwd").mkdir()  # empty: no glob can match
    return root / "home", root / "cwd"


def test_edge_cases_give_bash_words_exactly(places: tuple[Path, Path]) -> None:
    home, cwd = places
    expected = bash_words(EDGE_CASES, home, cwd)
    unknown = {
        "{Z..a..3}",
        "{a..A}",
        "$HOME{a,b}",
        "x$a{b,c}",
        "{$HOME,x}y",
    }  # see _words._glued  # a character sequence through `\\` or a backquote: bash re-reads those
    for word, want in zip(EDGE_CASES, expected, strict=True):
        got = analysis_words(word, home, cwd)
        if word in unknown:
            assert got is None, word
        else:
            assert got == want, word


def test_generated_words_give_bash_words_or_unknown(places: tuple[Path, Path]) -> None:
    home, cwd = places
    words = generated_words(seed=12, count=1500)
    expected = bash_words(words, home, cwd)
    unknown = []
    for word, want in zip(words, expected, strict=True):
        got = analysis_words(word, home, cwd)
        if got is None:
            unknown.append(word)
            continue
        assert got == want, word
    # Unknown is safe (the generator makes many `$HOMEx`-style unset variables); the point is to resolve most.
    assert len(unknown) <= len(words) // 4, unknown[:20]


def test_past_the_cap_a_brace_word_is_unknown(places: tuple[Path, Path]) -> None:
    home, cwd = places
    assert analysis_words(f"{{1..{MAX_WORDS}}}", home, cwd) is not None
    assert analysis_words(f"{{1..{MAX_WORDS + 1}}}", home, cwd) is None
    assert analysis_words("{a,b}" * 9, home, cwd) is None  # 512 words, refused before they are built


@pytest.mark.parametrize(
    ("line", "program", "args"),
    [
        ("{r,}m -rf ~", None, None),  # tree-sitter cannot read a `{` starting a command: unparseable
        ("r{m,} -rf ~", "rm", ("r", "-rf", "~")),
        ("/bin/{rm,x} -rf ~", "rm", ("/bin/x", "-rf", "~")),
        ("x=; $x rm -rf ~", "rm", ("-rf", "~")),
        ("cat${IFS}/etc/passwd", "cat", ("/etc/passwd",)),
        ("rm${IFS}-rf${IFS}/", "rm", ("-rf", "/")),
    ],
)
def test_the_program_is_the_first_word_bash_makes(line: str, program: str | None, args: tuple[str, ...]) -> None:
    analysis = analyze(line, cwd="/home/u/app", home="/home/u")
    if program is None:
        assert analysis.error is not None or any(c.dynamic for c in analysis.commands)
        return
    assert analysis.error is None
    assert [(c.program, c.args) for c in analysis.commands] == [(program, args)]


def test_a_blank_tree_sitter_drops_between_words_is_unparseable() -> None:
    assert analyze("printf x {a,b}\\ {c,d}", cwd="/home/u", home="/home/u").error is not None


def test_brace_words_name_every_path() -> None:
    [command] = analyze("cat ~/.ssh/{id_rsa,config}", cwd="/home/u", home="/home/u").commands
    assert command.accesses == (("/home/u/.ssh/id_rsa", "read"), ("/home/u/.ssh/config", "read"))


@pytest.mark.parametrize("line", ["sh -c 'cat ~/.ssh/id_rsa{,}'", "set +B; cat ~/.ssh/id_rsa{,}",
                                  "watch 'cat ~/.ssh/id{_rsa,}'", "set +o braceexpand; cat x{,}"])  # fmt: skip
def test_brace_words_stay_unknown_where_bash_may_not_expand_them(line: str) -> None:
    """dash (`sh`) has no brace expansion, and `set +B` turns bash's off: the word is then only known at run time."""
    commands = analyze(line, cwd="/home/u", home="/home/u").commands
    assert "args" in commands[-1].unknowns


def test_set_plus_b_spelt_so_the_text_scan_misses_it_is_unparseable() -> None:
    assert analyze("s''et +''B; cat x{,}", cwd="/home/u", home="/home/u").error is not None


def test_field_splitting_of_static_values() -> None:
    analysis = analyze("bash -c 'rm -rf $0' \"$HOME x\"", cwd="/home/u/app", home="/home/u")
    assert ("/home/u", "delete") in analysis.commands[-1].accesses
    [command] = analyze("x='a  b'; IFS=:; rm $HOME", cwd="/home/u", home="/home/u").commands
    assert "args" in command.unknowns  # split at a changed IFS: not known statically


def test_an_unquoted_static_value_with_a_pattern_is_a_glob() -> None:
    commands = analyze("cd ~; x='*'; rm -rf $x", cwd="/home/u", home="/home/u").commands
    assert ("/home/u", "delete") in commands[-1].accesses  # rm -rf ~/*: the home emptied


@pytest.mark.parametrize(
    ("word", "path"),
    [("'~'", "/home/u/app/~"), ("\\~", "/home/u/app/~"), ('"~"/x', "/home/u/app/~/x"), ("~", "/home/u"),
     ("~/x", "/home/u/x"), ('"$HOME"', "/home/u")],
)  # fmt: skip
def test_a_quoted_tilde_is_a_file_named_tilde(word: str, path: str) -> None:
    [command] = analyze(f"rm -rf {word}", cwd="/home/u/app", home="/home/u").commands
    assert command.accesses == ((path, "delete"),)


def test_a_line_whose_words_expand_past_the_cap_is_unparseable() -> None:
    """Each word is capped at MAX_WORDS; the line at MAX_FIELDS extra arguments, so its cost stays linear."""
    line = "echo " + "{a,b}{c,d}{e,f}{g,h} " * 600
    assert analyze(line, cwd="/home/u", home="/home/u").error is not None
    assert analyze("echo " + "{a,b}{c,d}{e,f}{g,h} " * 100, cwd="/home/u", home="/home/u").error is None


def test_deeply_nested_braces_are_unknown() -> None:
    [command] = analyze("echo " + "{" * 20 + "a,b" + "}" * 20, cwd="/home/u", home="/home/u").commands
    assert "args" in command.unknowns
