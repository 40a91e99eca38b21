"""Regenerate packaging/keycardd.rb, keycardd's Homebrew formula, from pyproject.toml.

Why this script exists: Homebrew installs a Python application into a private virtualenv with `pip --no-deps`
from sdists only, so its formula has to name every runtime dependency, transitively and per platform, as a pinned
sdist `resource` with its sha256. Written by hand that list drifts from pyproject.toml, and
`brew update-python-resources` needs brew and evaluates markers only for the machine it runs on. This script resolves
the closure for Homebrew's python@3.13 on both macOS and Linux from pyproject's runtime `dependencies` (extras are not
installed), pins each package to the version this checkout is tested with (`.venv`) wherever that version satisfies
every requirement on it (else to the newest fitting PyPI release), takes sdist URLs and hashes from PyPI, and writes
the formula. tests/test_formula.py then checks the written formula against pyproject.toml without the network.

    .venv/bin/python packaging/update_formula.py [--sdist dist/keycardd-X.Y.Z.tar.gz] [--check]

`--sdist` hashes the exact file uploaded to PyPI (do this at release time); without it the sha256 already in the
formula is kept when the version is unchanged, else a freshly built sdist is hashed (which will not match an upload
made from another build). `--check` writes nothing and exits 1 when the formula would change.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import re
import subprocess
import sys
import tempfile
import tomllib
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

REPO = Path(__file__).resolve().parent.parent
PYPROJECT = REPO / "pyproject.toml"
FORMULA = REPO / "packaging" / "keycardd.rb"
VENV = REPO / ".venv"
PYPI = "https://pypi.org/pypi"
FILES_HOST = "https://files.pythonhosted.org"
HOMEPAGE = "https://github.com/keycard-labs/keycardd"
PYTHON_FORMULA = "python@3.13"
PYTHON = Version("3.13.0")

FORMULA_DEPENDENCIES = {"certifi": "certifi", "cryptography": "cryptography"}
"""PyPI projects homebrew-core ships as formulae: depended on instead of vendored, and not recursed into (their own
dependencies are the formula's business)."""

DESC_MAX = 80
DESC_SHORT = "Local agent-hook daemon: Cedar policy for Claude Code and Cursor tool calls"
"""Used when pyproject's description, without its leading article and final period, is longer than `brew audit`
allows (80 characters)."""

_BASE_ENVIRONMENT = {
    "python_version": "3.13",
    "python_full_version": "3.13.0",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "os_name": "posix",
    "extra": "",
}
PLATFORMS: dict[str, dict[str, str]] = {
    "macos": {**_BASE_ENVIRONMENT, "sys_platform": "darwin", "platform_system": "Darwin"},
    "linux": {**_BASE_ENVIRONMENT, "sys_platform": "linux", "platform_system": "Linux"},
}
"""Marker environments of Homebrew's python@3.13 on each platform (the keys of the formula's `on_<platform>` blocks)."""

MACHINES = {"macos": ("arm64", "x86_64"), "linux": ("x86_64", "aarch64")}
"""Every marker is evaluated for each architecture too: the formula has no per-architecture blocks, so a marker that
depends on it is an error to resolve by hand."""


class FormulaError(Exception):
    """Resolution or download metadata cannot give a correct formula; the message says why."""


@dataclass(frozen=True, slots=True)
class Pin:
    name: str
    """Canonical PyPI name (lower case, `-`): also the resource name."""
    version: Version
    requires: tuple[Requirement, ...]
    source: str
    """`installed` (the .venv) or `pypi`."""


@dataclass(frozen=True, slots=True)
class Sdist:
    url: str
    sha256: str


@dataclass(slots=True)
class Resolution:
    pins: dict[str, Pin]
    platforms: dict[str, set[str]] = field(default_factory=dict)
    """Resource name -> the platforms that need it."""
    formulae: dict[str, set[str]] = field(default_factory=dict)
    """Formula name -> the platforms that need it."""


def holds(requirement: Requirement, platform: str, extra: str = "") -> bool:
    """Does the requirement's marker hold on the platform (for every architecture alike)?"""
    if requirement.marker is None:
        return True
    answers = {
        requirement.marker.evaluate({**PLATFORMS[platform], "platform_machine": machine, "extra": extra})
        for machine in MACHINES[platform]
    }
    if len(answers) > 1:
        raise FormulaError(f"{requirement} depends on the CPU architecture on {platform}: write that part by hand")
    return answers.pop()


def satisfies(version: Version, specifiers: Iterable[SpecifierSet]) -> bool:
    return all(specifier.contains(version, prereleases=True) for specifier in specifiers)


def installed(name: str) -> tuple[Version, tuple[Requirement, ...]] | None:
    """The version installed in the running environment (the .venv) and its requirements, if any."""
    try:
        version = Version(importlib.metadata.version(name))
    except (importlib.metadata.PackageNotFoundError, InvalidVersion):
        return None
    return version, tuple(Requirement(line) for line in importlib.metadata.requires(name) or ())


class PyPIClient:
    """The PyPI JSON API, with per-run caching."""

    def __init__(self, client: httpx.Client) -> None:
        self._client = client
        self._documents: dict[str, dict[str, Any] | None] = {}

    def _get(self, url: str) -> dict[str, Any] | None:
        """The JSON document at url (with its final URL under `_url`), None when PyPI says 404."""
        if url not in self._documents:
            response = self._client.get(url)
            if response.status_code == httpx.codes.NOT_FOUND:
                self._documents[url] = None
            else:
                response.raise_for_status()
                data: dict[str, Any] = response.json()
                data["_url"] = str(response.url)
                self._documents[url] = data
        return self._documents[url]

    def project(self, name: str) -> dict[str, Any]:
        data = self._get(f"{PYPI}/{name}/json")
        if data is None:
            raise FormulaError(f"{name} is not on PyPI")
        return data

    def release(self, name: str, version: Version) -> tuple[list[dict[str, Any]], list[str] | None, str]:
        """The release's files, its requires_dist (None when PyPI does not say) and the URL they came from.

        Uses /pypi/<name>/<version>/json; where that is missing (some mirrors serve only the project document) falls
        back to the project document, whose requires_dist is only for its latest version."""
        data = self._get(f"{PYPI}/{name}/{version}/json")
        if data is not None:
            return data["urls"], data["info"].get("requires_dist") or [], data["_url"]
        project = self.project(name)
        files = next((fs for key, fs in project["releases"].items() if _version(key) == version), None)
        if files is None:
            raise FormulaError(f"PyPI has no release {version} of {name}")
        latest = _version(project["info"]["version"]) == version
        return files, (project["info"].get("requires_dist") or []) if latest else None, project["_url"]

    def newest(self, name: str, specifiers: Sequence[SpecifierSet]) -> Version:
        """The newest final, non-yanked release that satisfies every specifier and supports Python 3.13."""
        candidates: list[Version] = []
        for key, files in self.project(name)["releases"].items():
            version = _version(key)
            if version is None or version.is_prerelease or not files or all(f.get("yanked") for f in files):
                continue
            requires_python = {f.get("requires_python") for f in files if f.get("requires_python")}
            if satisfies(version, specifiers) and satisfies(PYTHON, (SpecifierSet(r) for r in requires_python)):
                candidates.append(version)
        if not candidates:
            wanted = ", ".join(str(s) or "any" for s in specifiers)
            raise FormulaError(f"no release of {name} on PyPI satisfies {wanted} on Python {PYTHON}")
        return max(candidates)

    def sdist(self, name: str, version: Version) -> Sdist:
        files, _requires, base = self.release(name, version)
        sdists = [f for f in files if f.get("packagetype") == "sdist" and not f.get("yanked")]
        if not sdists:
            raise FormulaError(
                f"{name} {version} has no sdist on PyPI: Homebrew builds resources from source only "
                f"(pin another version, or depend on a formula that provides {name})"
            )
        chosen = min(sdists, key=lambda f: not str(f["filename"]).endswith(".tar.gz"))
        return Sdist(_files_url(chosen, base), chosen["digests"]["sha256"])

    def pin(self, name: str, specifiers: Sequence[SpecifierSet]) -> Pin:
        local = installed(name)
        if local is not None and satisfies(local[0], specifiers):
            return Pin(name, local[0], local[1], "installed")
        version = self.newest(name, specifiers)
        _files, requires, _base = self.release(name, version)
        if requires is None:
            raise FormulaError(f"PyPI does not give the requirements of {name} {version}: install it in .venv")
        return Pin(name, version, tuple(Requirement(line) for line in requires), "pypi")


def _version(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


def _files_url(file: Mapping[str, Any], base: str) -> str:
    """The canonical https://files.pythonhosted.org/packages/... URL of a release file.

    PyPI gives it directly; mirrors may give a relative or rewritten URL, whose path still ends in the blake2b-256
    digest layout that files.pythonhosted.org uses."""
    url = str(httpx.URL(base).join(str(file["url"])))
    if url.startswith(f"{FILES_HOST}/packages/"):
        return url
    blake2b = str(file.get("digests", {}).get("blake2b_256") or "")
    filename = str(file["filename"])
    if len(blake2b) == 64 and url.endswith(f"/{blake2b[:2]}/{blake2b[2:4]}/{blake2b[4:]}/{filename}"):
        return f"{FILES_HOST}/packages/{blake2b[:2]}/{blake2b[2:4]}/{blake2b[4:]}/{filename}"
    raise FormulaError(f"cannot tell the files.pythonhosted.org URL of {filename} from {url}")


def _walk(
    roots: Sequence[Requirement], pypi: PyPIClient, known: Mapping[str, list[SpecifierSet]]
) -> tuple[Resolution, dict[str, list[tuple[SpecifierSet, str]]]]:
    """One walk of the closure from `roots` on each platform; also returns every specifier met, with who asked."""
    resolution = Resolution({})
    asked: dict[str, list[tuple[SpecifierSet, str]]] = {}
    extras: dict[tuple[str, str], set[str]] = {}
    queue: deque[tuple[str, str]] = deque()

    def need(requirement: Requirement, platform: str, by: str) -> None:
        name = canonicalize_name(requirement.name)
        asked.setdefault(name, []).append((requirement.specifier, by))
        if name in FORMULA_DEPENDENCIES:
            resolution.formulae.setdefault(FORMULA_DEPENDENCIES[name], set()).add(platform)
            return
        active = extras.setdefault((name, platform), set())
        wanted = {canonicalize_name(extra) for extra in requirement.extras}
        if platform in resolution.platforms.get(name, set()) and wanted <= active:
            return
        active |= wanted
        resolution.platforms.setdefault(name, set()).add(platform)
        queue.append((name, platform))

    for requirement in roots:
        for platform in PLATFORMS:
            if holds(requirement, platform):
                need(requirement, platform, "keycardd")
    while queue:
        name, platform = queue.popleft()
        if name not in resolution.pins:
            resolution.pins[name] = pypi.pin(name, [spec for spec, _by in asked[name]] + known.get(name, []))
        pin = resolution.pins[name]
        for requirement in pin.requires:
            if any(holds(requirement, platform, extra) for extra in ("", *sorted(extras[(name, platform)]))):
                need(requirement, platform, f"{name} {pin.version}")
    return resolution, asked


def resolve(roots: Sequence[Requirement], pypi: PyPIClient) -> Resolution:
    """The runtime closure of `roots` on each platform, one pin per package.

    A package is pinned when first reached, from the specifiers seen so far; if a later requirement excludes that
    pin, the walk is redone with every specifier known up front."""
    known: dict[str, list[SpecifierSet]] = {}
    details = ""
    for _attempt in range(10):
        resolution, asked = _walk(roots, pypi, known)
        conflicts = [
            name
            for name, pin in resolution.pins.items()
            if not satisfies(pin.version, (spec for spec, _by in asked[name]))
        ]
        if not conflicts:
            return resolution
        for name in conflicts:
            known[name] = [spec for spec, _by in asked[name]]
        details = "; ".join(f"{name}: {', '.join(f'{spec} ({by})' for spec, by in asked[name])}" for name in conflicts)
    raise FormulaError(f"the requirements do not settle on one version each: {details}")


def formula_description(description: str) -> str:
    """pyproject's description made acceptable to `brew audit`: no leading article, no final period, <= 80 chars."""
    text = re.sub(r"^(?:an?|the)\s+", "", description.strip(), flags=re.IGNORECASE).rstrip(".")
    text = text[:1].upper() + text[1:]
    return text if len(text) <= DESC_MAX else DESC_SHORT


def sdist_sha256(version: str, sdist: Path | None, current: str | None) -> str:
    if sdist is not None:
        expected = f"keycardd-{version}.tar.gz"
        if sdist.name != expected:
            raise FormulaError(f"{sdist} is not {expected} (pyproject.toml is at version {version})")
        return hashlib.sha256(sdist.read_bytes()).hexdigest()
    if current is not None:
        match = re.search(r'^  url "[^"]*/keycardd-([^"/]+)\.tar\.gz"\n  sha256 "([0-9a-f]{64})"', current, re.M)
        if match and match.group(1) == version:
            return match.group(2)
    with tempfile.TemporaryDirectory(prefix="keycardd-sdist") as outdir:
        command = [sys.executable, "-m", "build", "--sdist", "--outdir", outdir, str(REPO)]
        built_run = subprocess.run(command, capture_output=True, text=True, check=False)
        if built_run.returncode != 0:
            raise FormulaError(f"python -m build --sdist failed:\n{built_run.stdout[-2000:]}{built_run.stderr[-2000:]}")
        built = Path(outdir) / f"keycardd-{version}.tar.gz"
        if not built.is_file():
            raise FormulaError(f"python -m build did not produce {built.name}")
        return hashlib.sha256(built.read_bytes()).hexdigest()


def _resource(name: str, sdist: Sdist, indent: str) -> list[str]:
    return [
        f'{indent}resource "{name}" do',
        f'{indent}  url "{sdist.url}"',
        f'{indent}  sha256 "{sdist.sha256}"',
        f"{indent}end",
    ]


def render(project: Mapping[str, Any], sha256: str, resolution: Resolution, sdists: Mapping[str, Sdist]) -> str:
    version = str(project["version"])
    everywhere = set(PLATFORMS)
    lines = [
        "class Keycardd < Formula",
        "  include Language::Python::Virtualenv",
        "",
        f'  desc "{formula_description(str(project["description"]))}"',
        f'  homepage "{HOMEPAGE}"',
        f'  url "{FILES_HOST}/packages/source/k/keycardd/keycardd-{version}.tar.gz"',
        f'  sha256 "{sha256}"',
        f'  license "{project["license"]}"',
        "",
        '  depends_on "rust" => :build # cedarpy and watchfiles are maturin (Rust) packages',
    ]
    formulae = {name: platforms for name, platforms in resolution.formulae.items() if platforms == everywhere}
    lines += [f'  depends_on "{name}"' for name in sorted([*formulae, PYTHON_FORMULA])]
    for platform in sorted(PLATFORMS, key=lambda p: p != "macos"):  # on_macos, then on_linux
        block_formulae = sorted(n for n, p in resolution.formulae.items() if p == {platform})
        block_resources = sorted(n for n, p in resolution.platforms.items() if p == {platform})
        if not block_formulae and not block_resources:
            continue
        lines += ["", f"  on_{platform} do"]
        lines += [f'    depends_on "{name}"' for name in block_formulae]
        for index, name in enumerate(block_resources):
            if index or block_formulae:
                lines.append("")
            lines += _resource(name, sdists[name], "    ")
        lines.append("  end")
    for name in sorted(n for n, p in resolution.platforms.items() if p == everywhere):
        lines += ["", *_resource(name, sdists[name], "  ")]
    lines.append(_TAIL)
    return "\n".join(lines)


_TAIL = """
  def install
    venv = virtualenv_install_with_resources
    # The C hook shim, compiled next to the virtualenv's keycardd (which it starts when no daemon answers) and linked
    # into bin for hooks that name it. `keycardctl install` still compiles its own copy under
    # ~/.local/share/keycard/bin (or uses the Python shim where there is no compiler).
    system ENV.cc, "-O2", "-std=c99", "-o", libexec/"bin/keycard-hook",
           venv.site_packages/"keycardd/shim/keycard-hook.c"
    bin.install_symlink libexec/"bin/keycard-hook"
  end

  service do
    run [opt_bin/"keycardd", "--foreground"]
    keep_alive true
    log_path var/"log/keycardd.log"
    error_log_path var/"log/keycardd.log"
  end

  test do
    assert_match "keycardd", shell_output("#{bin}/keycardctl --help")
    # A forbidden call is denied through the compiled shim with no daemon running (fail closed). The socket is
    # private to the test, so a keycardd the user runs cannot answer instead.
    ENV["KEYCARDD_SOCKET"] = (testpath/"keycardd.sock").to_s
    payload = '{"hook_event_name":"PreToolUse","tool_name":"Bash","tool_input":{"command":"ls"}}'
    output = pipe_output("#{bin}/keycard-hook claude --no-autostart", payload)
    assert_match "deny", output
  end
end
"""


def runtime_requirements(project: Mapping[str, Any]) -> list[Requirement]:
    return [Requirement(line) for line in project.get("dependencies", [])]


def generate(sdist: Path | None) -> str:
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]
    current = FORMULA.read_text(encoding="utf-8") if FORMULA.exists() else None
    if Path(sys.prefix).resolve() != VENV.resolve():
        print(f"note: pins come from the running Python ({sys.prefix}), not {VENV}", file=sys.stderr)
    with httpx.Client(timeout=60, follow_redirects=True) as client:
        pypi = PyPIClient(client)
        resolution = resolve(runtime_requirements(project), pypi)
        sdists = {name: pypi.sdist(name, pin.version) for name, pin in resolution.pins.items()}
    sha256 = sdist_sha256(str(project["version"]), sdist, current)
    for name in sorted(resolution.pins):
        pin = resolution.pins[name]
        where = "/".join(sorted(resolution.platforms[name]))
        print(f"{name:20} {pin.version!s:14} {where:12} ({pin.source})", file=sys.stderr)
    return render(project, sha256, resolution, sdists)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sdist", type=Path, help="the keycardd sdist uploaded to PyPI, to take its sha256")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if the formula would change")
    args = parser.parse_args(argv)
    try:
        text = generate(args.sdist)
    except (FormulaError, httpx.HTTPError) as error:
        print(f"update_formula: {error}", file=sys.stderr)
        return 2
    current = FORMULA.read_text(encoding="utf-8") if FORMULA.exists() else None
    if args.check:
        if text != current:
            print(f"{FORMULA.relative_to(REPO)} is out of date: run packaging/update_formula.py", file=sys.stderr)
            return 1
        return 0
    FORMULA.write_text(text, encoding="utf-8")
    print(f"wrote {FORMULA.relative_to(REPO)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
