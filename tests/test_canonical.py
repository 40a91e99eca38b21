"""canonical_path and url_host: one spelling per file and per host, checked against glibc, curl and Node's URL."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keycardd.canonical import canonical_path, case_insensitive_paths, glob_candidates, url_host, url_hosts
from keycardd.config import ConfigError

HOME = "/home/u"
CWD = "/work/project"


def canon(path: str, **kwargs: object) -> str:
    options: dict[str, object] = {"cwd": CWD, "home": HOME, **kwargs}
    return canonical_path(path, **options)  # type: ignore[arg-type]


# ---- paths ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spelling",
    [
        "~",
        "~/",
        "~//",
        "${HOME}/",
        "$HOME//",
        "$HOME",
        "${HOME}",
        "/home/u",
        "/home/u/",
        "//home//u//",
        "/home/./u/.",
        "/home/x/../u",
        "~u",
        "~u/",
        "/proc/self/root/home/u",
        "/proc/self/cwd/../../home/u",
    ],
)
def test_every_spelling_of_home_is_home(spelling: str) -> None:
    assert canon(spelling) == HOME


@pytest.mark.parametrize(
    ("spelling", "expected"),
    [
        ("~/.ssh/id_rsa", "/home/u/.ssh/id_rsa"),
        ("~//.ssh//id_rsa", "/home/u/.ssh/id_rsa"),
        ("$HOME/.ssh/./id_rsa", "/home/u/.ssh/id_rsa"),
        ("${HOME}/x/../.ssh/id_rsa", "/home/u/.ssh/id_rsa"),
        ("../../home/u/.ssh/id_rsa", "/home/u/.ssh/id_rsa"),
        (".env", "/work/project/.env"),
        ("./src/../.env", "/work/project/.env"),
        ("$PWD/.env", "/work/project/.env"),
        ("${PWD}/.env", "/work/project/.env"),
        ("~+/.env", "/work/project/.env"),
        ("/../../..", "/"),
        ("/", "/"),
        ("//", "/"),
        ("///", "/"),
        ("/./", "/"),
        ("../../../../..", "/"),
        ("/etc//passwd/", "/etc/passwd"),
        ("~root/.ssh/id_rsa", "/root/.ssh/id_rsa"),
        ("~alice/.aws/credentials", "/home/alice/.aws/credentials"),
        ("/proc/self/root/dev/sda", "/dev/sda"),
        ("/proc/thread-self/root/proc/1/root/dev/sda", "/dev/sda"),
        ("/proc/self/cwd/.env", "/work/project/.env"),
        ("/proc/42/cwd/.env", "/proc/42/cwd/.env"),  # another process's directory: not ours to guess
        ("~-/x", "/work/project/~-/x"),  # $OLDPWD is unknown here
        ("$HOMEWORK/x", "/work/project/$HOMEWORK/x"),  # not $HOME
        ("a:b", "/work/project/a:b"),  # a POSIX name, not a drive
        ("dir\\..\\.env", "/work/project/dir\\..\\.env"),  # backslash is an ordinary character on POSIX
    ],
)
def test_posix_paths(spelling: str, expected: str) -> None:
    assert canon(spelling) == expected


def test_relative_paths_without_a_usable_cwd_are_rooted_at_slash() -> None:
    assert canonical_path(".env", cwd="", home=HOME) == "/.env"
    assert canonical_path("x/.env", cwd="relative/dir", home=HOME) == "/x/.env"
    assert canonical_path(".", cwd="", home=HOME) == "/"


def test_the_cwd_and_home_given_are_normalised_too() -> None:
    assert canonical_path("~/.ssh", cwd="/a//b/../c/", home="/home//u/") == "/home/u/.ssh"
    assert canonical_path("x", cwd="//a//b/./c/", home=HOME) == "/a/b/c/x"


@pytest.mark.parametrize(
    ("spelling", "expected"),
    [
        ("~/.SSH/ID_RSA", "/home/u/.ssh/id_rsa"),
        ("/HOME/U/.Aws/Credentials", "/home/u/.aws/credentials"),
        (".ENV", "/work/project/.env"),
        ("~/.\u017fsh/id_rsa", "/home/u/.ssh/id_rsa"),  # LATIN SMALL LETTER LONG S case-folds to s
        ("~/.ssh/ID_\u212aEY", "/home/u/.ssh/id_key"),  # KELVIN SIGN case-folds to k
        ("~/.ssh/cafe\u0301", "/home/u/.ssh/caf\u00e9"),  # decomposed and composed are one name on APFS
    ],
)
def test_case_folding_for_case_insensitive_file_systems(spelling: str, expected: str) -> None:
    assert canon(spelling, fold_case=True) == expected
    assert canon(spelling) != expected or spelling == expected


@pytest.mark.parametrize(
    ("spelling", "cwd", "expected"),
    [
        ("C:\\Users\\U\\.ssh\\ID_RSA", CWD, "c:/users/u/.ssh/id_rsa"),
        ("C:/Users/U/.ssh/id_rsa", CWD, "c:/users/u/.ssh/id_rsa"),
        ("c:\\users\\u\\x\\..\\.ssh\\.\\id_rsa", CWD, "c:/users/u/.ssh/id_rsa"),
        ("C:\\\\Users\\\\U", CWD, "c:/users/u"),
        ("\\\\?\\C:\\Users\\U\\.env", CWD, "c:/users/u/.env"),
        ("\\\\.\\C:\\x", CWD, "c:/x"),
        ("\\\\server\\share\\.env", CWD, "//server/share/.env"),
        ("..\\.env", "C:\\work\\app", "c:/work/.env"),
        ("src\\..\\.ENV", "C:\\work\\app", "c:/work/app/.env"),
        ("~\\.ssh\\id_rsa", "C:\\work", "c:/users/u/.ssh/id_rsa"),
        ("C:\\proj\\.env.", CWD, "c:/proj/.env"),  # Win32 drops trailing dots and spaces
        ("C:\\proj\\.env . .", CWD, "c:/proj/.env"),
        ("C:\\Users\\U\\.ssh.\\id_rsa ", CWD, "c:/users/u/.ssh/id_rsa"),
        ("C:\\proj\\.env::$DATA", CWD, "c:/proj/.env"),  # the default data stream is the file
        ("C:\\proj\\.env:$DATA", CWD, "c:/proj/.env"),
        ("\\\\.\\PhysicalDrive0", CWD, "//./physicaldrive0"),  # a device, not a relative name
        ("\\\\localhost\\C$\\Users\\U", CWD, "c:/users/u"),  # an administrative share is the drive
        ("\\\\?\\UNC\\127.0.0.1\\c$\\", CWD, "c:/"),
        ("\\\\server\\share$\\x", CWD, "//server/share$/x"),  # an ordinary hidden share is not
    ],
)
def test_windows_paths_use_slashes_and_fold_case(spelling: str, cwd: str, expected: str) -> None:
    assert canonical_path(spelling, cwd=cwd, home="C:\\Users\\U") == expected


# ---- hosts ---------------------------------------------------------------------------------------------------------

METADATA_SPELLINGS = [
    "169.254.169.254",
    "http://169.254.169.254/latest/meta-data/",
    "http://2852039166/",
    "http://0xA9FEA9FE/",
    "http://0xa9fea9fe/",
    "http://0251.0376.0251.0376/",
    "http://00000251.0376.0251.0376/",
    "http://0xa9.0xfe.0xa9.0xfe/",
    "http://0XA9.0XFE.0XA9.0XFE/",
    "http://169.254.43518/",
    "http://169.16689662/",
    "http://0xa9.0xfea9fe/",
    "http://169.254.169.254./",
    "http://169.254.169.254.../",
    "http://[::ffff:169.254.169.254]/",
    "http://[::ffff:a9fe:a9fe]/",
    "http://[0:0:0:0:0:ffff:a9fe:a9fe]/",
    "http://[::FFFF:A9FE:A9FE]/",
    "http://[::169.254.169.254]/",
    "http://user:secret@169.254.169.254:80/",
    "https://169.254.169.254:443",
    "user@169.254.169.254",
    "169.254.169.254:80",
    "//169.254.169.254/x",
    "http:/169.254.169.254/",
    "http:169.254.169.254/",
    "HTTP://169.254.169.254/",
    "http:\\\\169.254.169.254\\latest",
    "http://169.254.169.%32%35%34/",
    "http://%31%36%39.254.169.254/",
    "http://\uff11\uff16\uff19.\uff12\uff15\uff14.\uff11\uff16\uff19.\uff12\uff15\uff14/",
    "http://169\u3002254\u3002169\u3002254/",
    "  http://169.254.169.254/  ",
    "http://169.254.\t169.254/",  # WHATWG drops tabs and newlines anywhere in a URL
    "http://169.254.169.254\n/",
    "\x01http://169.254.169.254/",  # and C0 controls around it
    "http://\u2460\u2465\u2468.\u2461\u2464\u2463.\u2460\u2465\u2468.\u2461\u2464\u2463/",  # circled digits
]


@pytest.mark.parametrize("spelling", METADATA_SPELLINGS)
def test_every_spelling_of_the_metadata_address_is_one_host(spelling: str) -> None:
    assert url_host(spelling) == "169.254.169.254"
    assert "169.254.169.254" in url_hosts(spelling)


@pytest.mark.parametrize(
    "spelling",
    [
        "metadata.google.internal",
        "METADATA.GOOGLE.INTERNAL.",
        "http://Metadata.Google.Internal../computeMetadata/v1/",
        "http://metadata.google.internal:80/",
        "http://metadata.goo%C2%ADgle.internal/",  # a soft hyphen, which IDNA drops
        "http://metadata.goo\u200bgle.internal/",  # a zero-width space, likewise
        "http://metadata\uff0egoogle\uff0einternal/",  # fullwidth full stops
        "http://\uff4d\uff45\uff54\uff41\uff44\uff41\uff54\uff41.google.internal/",  # fullwidth letters
    ],
)
def test_every_spelling_of_the_metadata_name_is_one_host(spelling: str) -> None:
    assert url_host(spelling) == "metadata.google.internal"


@pytest.mark.parametrize(
    ("spelling", "expected"),
    [
        ("http://[fd00:ec2::254]/latest", "fd00:ec2::254"),
        ("http://[FD00:EC2:0:0:0:0:0:254]:80/", "fd00:ec2::254"),
        ("fd00:ec2::254", "fd00:ec2::254"),
        ("[fe80::1%25eth0]", "fe80::1"),
        ("http://[::1]/", "::1"),
        ("http://100.100.100.200/", "100.100.100.200"),
        ("http://0x646464C8/", "100.100.100.200"),
        ("http://169.254.170.2/v2/credentials", "169.254.170.2"),
        ("http://0xa9fe.0xaa02/", None),  # a.b form: the first part must be one byte; not an address, a name
        ("https://github.com/o/r", "github.com"),
        ("ssh://git@GitHub.com:22/o/r", "github.com"),
        ("git@github.com:o/r.git", "github.com"),
        ("localhost:8080/health", "localhost"),
        ("http://127.1/", "127.0.0.1"),
        ("http://0/", "0.0.0.0"),
        ("http://1.2.3.4.5/", "1.2.3.4.5"),
        ("http://4294967296/", "4294967296"),  # too big for an address: glibc does not read it as one either
        ("http://0x1g/", "0x1g"),
        ("http://08.1.1.1/", "08.1.1.1"),  # 08 is not octal: a name
    ],
)
def test_other_hosts(spelling: str, expected: str | None) -> None:
    assert url_host(spelling) == (expected if expected is not None else spelling[len("http://") :].rstrip("/"))


@pytest.mark.parametrize("text", ["", "   ", "http://", "http:///", "http://[zz]/", "http://[::1/", "http://:80/"])
def test_no_host(text: str) -> None:
    assert url_host(text) is None
    assert url_hosts(text) == frozenset()


def test_ambiguous_authorities_give_every_reading() -> None:
    # WHATWG (Node's fetch) ends the authority at the backslash; curl and urllib read the host after the `@`.
    assert url_hosts("http://evil.example\\@169.254.169.254/") == {"evil.example", "169.254.169.254"}
    assert url_hosts("http://169.254.169.254\\@evil.example/") == {"169.254.169.254", "evil.example"}
    assert "169.254.169.254" in url_hosts("http://a@b@169.254.169.254/")


# ---- the real parsers ------------------------------------------------------------------------------------------------


def _numeric_host() -> st.SearchStrategy[str]:
    def spell(value: int, style: str) -> str:
        return {"dec": str(value), "hex": hex(value), "HEX": hex(value).upper(), "oct": "0" + oct(value)[2:]}[style]

    part = st.tuples(st.integers(0, 2**32), st.sampled_from(["dec", "hex", "HEX", "oct"])).map(lambda t: spell(*t))
    small = st.tuples(st.integers(0, 300), st.sampled_from(["dec", "hex", "oct"])).map(lambda t: spell(*t))
    return st.one_of(
        part,
        st.tuples(small, part).map(".".join),
        st.tuples(small, small, part).map(".".join),
        st.tuples(small, small, small, small).map(".".join),
    )


@settings(max_examples=500, deadline=None)
@given(_numeric_host())
def test_numeric_hosts_read_as_glibc_inet_aton_reads_them(text: str) -> None:
    try:
        expected = socket.inet_ntoa(socket.inet_aton(text))
    except OSError:
        expected = text.lower()
    assert url_host(text) == expected


@pytest.fixture
def recording_proxy() -> Iterator[tuple[int, list[str]]]:
    """A local HTTP proxy that records each request line (curl sends the absolute URL it parsed) and answers 200."""
    server = socket.create_server(("127.0.0.1", 0))
    lines: list[str] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                data = conn.recv(65536)
                lines.append(data.split(b"\r\n", 1)[0].decode("latin-1"))
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], lines
    server.close()
    thread.join(timeout=5)


TRICKY_URLS = [
    *(url for url in METADATA_SPELLINGS[1:] if url.isprintable()),  # curl refuses control characters
    "http://evil.example\\@169.254.169.254/",
    "http://169.254.169.254\\@evil.example/",
    "http://metadata.goo%C2%ADgle.internal/",
    "http://METADATA.GOOGLE.INTERNAL./",
    "http://[fd00:ec2::254]/",
]


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_connects_to_a_host_url_hosts_names(recording_proxy: tuple[int, list[str]]) -> None:
    port, lines = recording_proxy
    checked = 0
    for url in TRICKY_URLS:
        lines.clear()
        result = subprocess.run(
            ["curl", "-s", "-o", "/dev/null", "-m", "5", "-x", f"http://127.0.0.1:{port}", url.strip()],
            check=False,
            capture_output=True,
        )
        if result.returncode != 0 or not lines:
            continue  # curl refused the URL: it connects nowhere
        requested = lines[0].split(" ")[1]  # "GET http://host/path HTTP/1.1"
        assert url_host(requested) in url_hosts(url), (url, requested)
        checked += 1
    assert checked >= len(TRICKY_URLS) - 4  # curl rejects only a few (`http:h`, `a@b@h` forms)


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_node_url_reads_a_host_url_hosts_names() -> None:
    script = (
        "const out = {}; for (const u of JSON.parse(process.argv[1])) {"
        " try { out[u] = new URL(u.trim()).hostname } catch { out[u] = null } }"
        " console.log(JSON.stringify(out))"
    )
    urls = [url for url in TRICKY_URLS if "://" in url or url.startswith("http:")]
    result = subprocess.run(["node", "-e", script, json.dumps(urls)], check=True, capture_output=True, text=True)
    hosts: dict[str, str | None] = json.loads(result.stdout)
    assert sum(host is not None for host in hosts.values()) >= len(urls) - 2
    for url, host in hosts.items():
        if host is not None:
            assert url_host(host) in url_hosts(url), (url, host)


# ---- wildcards ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "dotfiles", "expected"),
    [
        ("~/.ss?/id_rsa", False, {"~/.ssh/id_rsa"}),
        ("~/.[s]sh/id_rsa", False, {"~/.ssh/id_rsa"}),
        ("~/.aws/cred*", False, {"~/.aws/credentials"}),
        ("~/.AWS/CRED*", False, {"~/.aws/credentials"}),
        ("~/.ss*", False, {"~/.ssh"}),
        (".en?", False, {".env"}),
        ("/work/p/.env.[lp]*", False, {"/work/p/.env.local", "/work/p/.env.production"}),
        ("*.env", False, set()),  # bash: a leading wildcard does not match a leading dot
        ("*.env", True, {".env"}),  # PowerShell's providers: it does
        ("*", True, set()),  # a bare `*` is ordinary (`rm -r build/*`)
        ("~/.aws/*", False, {"~/.aws/credentials", "~/.aws/config", "~/.aws/sso"}),  # below a credential directory
        ("build/*", False, set()),
        ("src/*.py", True, set()),
        ("~/.ssh/id_rsa", False, set()),  # no wildcard, nothing to add
    ],
)
def test_wildcards_stand_for_the_credential_files_they_could_match(
    pattern: str, dotfiles: bool, expected: set[str]
) -> None:
    assert set(glob_candidates(pattern, dotfiles=dotfiles)) == expected


@pytest.mark.parametrize(
    ("env", "platform", "expected"),
    [
        ({}, "darwin", True),
        ({}, "win32", True),
        ({}, "linux", False),
        ({"KEYCARDD_CASE_INSENSITIVE_PATHS": "1"}, "linux", True),
        ({"KEYCARDD_CASE_INSENSITIVE_PATHS": "yes"}, "linux", True),
        ({"KEYCARDD_CASE_INSENSITIVE_PATHS": "0"}, "darwin", False),  # a case-sensitive APFS volume
        ({"KEYCARDD_CASE_INSENSITIVE_PATHS": "off"}, "darwin", False),
    ],
)
def test_case_insensitivity_is_a_setting_with_a_platform_default(
    env: dict[str, str], platform: str, expected: bool
) -> None:
    assert case_insensitive_paths(env, platform) is expected


def test_a_case_setting_that_is_not_1_or_0_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="KEYCARDD_CASE_INSENSITIVE_PATHS must be 1 or 0"):
        case_insensitive_paths({"KEYCARDD_CASE_INSENSITIVE_PATHS": "maybe"}, "linux")


_PATH_PARTS = st.sampled_from(["a", "B", ".", "..", "", "~", "~u", "$HOME", "${HOME}", "$PWD", ".ssh", "id_rsa", "proc",
                               "self", "root", "cwd", "x y", "\u00e9"])  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(st.lists(_PATH_PARTS, max_size=8), st.booleans(), st.booleans())
def test_posix_canonical_paths_are_absolute_normal_and_stable(parts: list[str], rooted: bool, fold: bool) -> None:
    path = ("/" if rooted else "") + "/".join(parts)
    result = canonical_path(path, cwd=CWD, home=HOME, fold_case=fold)
    assert result.startswith("/")
    assert result == "/" or not result.endswith("/")
    assert "//" not in result and "/./" not in result and "/../" not in result and not result.endswith(("/.", "/.."))
    assert canonical_path(result, cwd="/elsewhere", home="/other", fold_case=fold) == result  # a fixed point
