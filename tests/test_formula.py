"""The Homebrew formula (packaging/keycardd.rb, written by packaging/update_formula.py) against pyproject.toml.

Homebrew installs each resource with `pip --no-deps`, so a dependency missing from the formula is only found when
`brew install` or `brew test` fails on a user's machine. These checks are offline and fast: the formula is parsed
with regexes, pyproject's runtime dependencies are evaluated for Homebrew's python@3.13 on macOS and Linux, and the
requirements of each resource are read from the test venv wherever it has that exact version installed.
"""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from dataclasses import dataclass

import pytest
from conftest import REPO
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

FORMULA = REPO / "packaging" / "keycardd.rb"
PYPROJECT = REPO / "pyproject.toml"
MAPPED = {"certifi": "certifi", "cryptography": "cryptography"}
"""PyPI projects the formula takes from homebrew-core formulae (`depends_on`) instead of resources."""

_PYTHON_313 = {
    "python_version": "3.13",
    "python_full_version": "3.13.0",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "os_name": "posix",
    "extra": "",
}
ENVIRONMENTS = {
    "macos": {**_PYTHON_313, "sys_platform": "darwin", "platform_system": "Darwin"},
    "linux": {**_PYTHON_313, "sys_platform": "linux", "platform_system": "Linux"},
}
PLATFORMS = tuple(ENVIRONMENTS)

_BLOCK = re.compile(r"^  on_(?P<platform>macos|linux) do\n(?P<body>.*?)^  end\n", re.M | re.S)
_RESOURCE = re.compile(
    r'^ +resource "(?P<name>[^"]+)" do\n +url "(?P<url>[^"]+)"\n +sha256 "(?P<sha256>[^"]*)"\n +end\n', re.M
)
_DEPENDS_ON = re.compile(r'^ +depends_on "(?P<name>[^"]+)"(?P<tag> => :\w+)?', re.M)
_SDIST_URL = re.compile(
    r"^https://files\.pythonhosted\.org/packages/[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{60}/"
    r"(?P<dist>[A-Za-z0-9._]+?)-(?P<version>[^-/]+)\.(?:tar\.gz|zip)$"
)


@dataclass(frozen=True)
class Resource:
    name: str
    url: str
    sha256: str
    platform: str | None
    """`macos` or `linux` inside an on_<platform> block; None for every platform."""

    @property
    def version(self) -> Version:
        match = _SDIST_URL.match(self.url)
        assert match, f"{self.name}: {self.url} is not a files.pythonhosted.org sdist"
        return Version(match["version"])

    def on(self, platform: str) -> bool:
        return self.platform in (None, platform)


@dataclass(frozen=True)
class Formula:
    text: str
    resources: tuple[Resource, ...]
    depends_on: tuple[tuple[str, str | None, str | None], ...]
    """(formula, tag such as `:build`, platform or None)."""

    def resources_on(self, platform: str) -> dict[str, Resource]:
        return {r.name: r for r in self.resources if r.on(platform)}

    def formulae_on(self, platform: str) -> set[str]:
        return {name for name, tag, where in self.depends_on if tag is None and where in (None, platform)}

    def block(self, header: str) -> str:
        match = re.search(rf"^  {re.escape(header)}\n(.*?)^  end\n", self.text, re.M | re.S)
        assert match, f"the formula has no `{header}` block"
        return match.group(1)


def parse(text: str) -> Formula:
    spans = [(m.start(), m.end(), m["platform"]) for m in _BLOCK.finditer(text)]

    def platform_at(offset: int) -> str | None:
        return next((platform for start, end, platform in spans if start <= offset < end), None)

    resources = tuple(
        Resource(m["name"], m["url"], m["sha256"], platform_at(m.start())) for m in _RESOURCE.finditer(text)
    )
    # A resource the regex could not read would otherwise vanish from every check below.
    assert len(resources) == text.count('resource "'), "a resource block has an unexpected shape"
    depends_on = tuple(
        (m["name"], m["tag"].removeprefix(" => ") if m["tag"] else None, platform_at(m.start()))
        for m in _DEPENDS_ON.finditer(text)
    )
    return Formula(text, resources, depends_on)


@pytest.fixture(scope="module")
def formula() -> Formula:
    return parse(FORMULA.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def project() -> dict[str, object]:
    data: dict[str, object] = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]
    return data


def runtime_requirements(project: dict[str, object]) -> list[Requirement]:
    dependencies = project["dependencies"]
    assert isinstance(dependencies, list)
    return [Requirement(line) for line in dependencies]


def holds(requirement: Requirement, platform: str) -> bool:
    return requirement.marker is None or requirement.marker.evaluate(ENVIRONMENTS[platform])


def installed_requirements(resource: Resource) -> list[Requirement] | None:
    """The requirements of the resource's exact version, when the test venv has that version installed."""
    try:
        if Version(importlib.metadata.version(resource.name)) != resource.version:
            return None
    except (importlib.metadata.PackageNotFoundError, InvalidVersion):
        return None
    return [Requirement(line) for line in importlib.metadata.requires(resource.name) or ()]


def check_provided(formula: Formula, requirement: Requirement, platform: str, needed_by: str) -> str:
    """Assert the formula provides the requirement on the platform; returns the resource or formula name."""
    name = canonicalize_name(requirement.name)
    if name in MAPPED:
        assert MAPPED[name] in formula.formulae_on(platform), (
            f'{needed_by} needs {requirement} on {platform}: `depends_on "{MAPPED[name]}"` is missing there'
        )
        return MAPPED[name]
    resources = formula.resources_on(platform)
    assert name in resources, f"{needed_by} needs {requirement} on {platform}, and the formula has no such resource"
    assert requirement.specifier.contains(resources[name].version, prereleases=True), (
        f"{needed_by} needs {requirement}, the formula pins {name} {resources[name].version}"
    )
    return name


def closure(formula: Formula, project: dict[str, object], platform: str) -> tuple[set[str], set[str]]:
    """What pyproject's dependencies reach on the platform through the formula's resources, and which reached
    resources could not be followed (not installed here at the pinned version)."""
    resources = formula.resources_on(platform)
    reached: set[str] = set()
    unknown: set[str] = set()
    queue = [
        check_provided(formula, r, platform, "keycardd") for r in runtime_requirements(project) if holds(r, platform)
    ]
    while queue:
        name = queue.pop()
        if name in reached:
            continue
        reached.add(name)
        if name not in resources or name in MAPPED.values():
            continue  # a homebrew-core formula brings its own dependencies
        requirements = installed_requirements(resources[name])
        if requirements is None:
            unknown.add(name)
            continue
        needed_by = f"{name} {resources[name].version}"
        queue += [check_provided(formula, r, platform, needed_by) for r in requirements if holds(r, platform)]
    return reached, unknown


def test_the_formula_parses_into_resources_and_dependencies(formula: Formula) -> None:
    assert formula.text.startswith("class Keycardd < Formula\n  include Language::Python::Virtualenv\n")
    assert len(formula.resources) >= 10
    assert ("python@3.13", None, None) in formula.depends_on


@pytest.mark.parametrize("platform", PLATFORMS)
def test_every_runtime_dependency_is_provided_at_a_version_pyproject_accepts(
    formula: Formula, project: dict[str, object], platform: str
) -> None:
    roots = [r for r in runtime_requirements(project) if holds(r, platform)]
    assert len(roots) >= 10
    for requirement in roots:
        check_provided(formula, requirement, platform, "keycardd")


@pytest.mark.parametrize("platform", PLATFORMS)
def test_the_formula_is_closed_under_dependencies_and_has_nothing_unneeded(
    formula: Formula, project: dict[str, object], platform: str
) -> None:
    reached, unknown = closure(formula, project, platform)
    resources = formula.resources_on(platform)
    if unknown:  # their requirements are not known offline, so something they need could look unneeded
        pytest.skip(f"not installed here at the formula's versions: {sorted(unknown)}")
    assert not set(resources) - reached, f"resources nothing needs on {platform}"
    formulae = formula.formulae_on(platform) - {"python@3.13"}
    assert not formulae - reached, f"`depends_on` formulae nothing needs on {platform}"


def test_platform_blocks_hold_exactly_what_only_that_platform_needs(
    formula: Formula, project: dict[str, object]
) -> None:
    reached = {platform: closure(formula, project, platform) for platform in PLATFORMS}
    if any(unknown for _reached, unknown in reached.values()):
        pytest.skip("some resources are not installed here at the formula's versions")
    for resource in formula.resources:
        needed = {platform for platform in PLATFORMS if resource.name in reached[platform][0]}
        expected = None if needed == set(PLATFORMS) else next(iter(needed), "nowhere")
        assert resource.platform == expected, f"{resource.name} is needed on {sorted(needed)}"
    for name, tag, where in formula.depends_on:
        if tag is None and name in MAPPED.values():
            needed = {platform for platform in PLATFORMS if name in reached[platform][0]}
            assert where == (None if needed == set(PLATFORMS) else next(iter(needed))), f"{name}: {sorted(needed)}"


def test_resources_are_unique_pinned_sdists_with_sha256(formula: Formula) -> None:
    names = [r.name for r in formula.resources]
    assert len(names) == len(set(names)), "a resource is listed twice"
    assert len({r.sha256 for r in formula.resources}) == len(formula.resources), "two resources share a sha256"
    for resource in formula.resources:
        assert resource.name == canonicalize_name(resource.name), f"{resource.name}: not a normalized PyPI name"
        match = _SDIST_URL.match(resource.url)
        assert match, f"{resource.name}: {resource.url} is not a files.pythonhosted.org .tar.gz or .zip sdist"
        assert canonicalize_name(match["dist"]) == resource.name, f"{resource.url} is not an sdist of {resource.name}"
        assert str(resource.version) == match["version"], f"{resource.url}: the version is not normalized"
        assert re.fullmatch(r"[0-9a-f]{64}", resource.sha256), f"{resource.name}: bad sha256 {resource.sha256!r}"
        assert canonicalize_name(resource.name) not in MAPPED, f"{resource.name} must come from its formula"
    for platform in (None, *PLATFORMS):
        block = [r.name for r in formula.resources if r.platform == platform]
        assert block == sorted(block), f"resources are not sorted by name ({platform or 'all platforms'})"


def test_the_formula_builds_this_release_with_the_shim_and_a_service(
    formula: Formula, project: dict[str, object]
) -> None:
    text = formula.text
    version = project["version"]
    assert f'\n  url "https://files.pythonhosted.org/packages/source/k/keycardd/keycardd-{version}.tar.gz"\n' in text
    assert re.search(r'^  url "[^"]+"\n  sha256 "[0-9a-f]{64}"\n', text, re.M)
    assert f'\n  license "{project["license"]}"\n' in text
    desc = re.search(r'^  desc "([^"]+)"$', text, re.M)
    assert desc and len(desc[1]) <= 80 and not desc[1].endswith(".") and not re.match(r"(?i)an? |the ", desc[1])
    assert ("rust", ":build", None) in formula.depends_on  # cedarpy and watchfiles are built with maturin
    assert {name for name, tag, _where in formula.depends_on if tag is None} <= {"python@3.13", *MAPPED.values()}

    install = formula.block("def install")
    assert "virtualenv_install_with_resources" in install
    compile_shim = re.search(r'system ENV\.cc, (?:.|\n)*?"-o", libexec/"(?P<out>[^"]+)",\s*(?P<src>[^\n]+)', install)
    assert compile_shim and compile_shim["src"].endswith('"keycardd/shim/keycard-hook.c"'), install
    assert compile_shim["out"].endswith("keycard-hook")
    assert f'bin.install_symlink libexec/"{compile_shim["out"]}"' in install
    assert (REPO / "keycardd" / "shim" / "keycard-hook.c").is_file()

    service = formula.block("service do")
    assert 'run [opt_bin/"keycardd", "--foreground"]' in service
    assert "keep_alive true" in service

    test = formula.block("test do")
    assert "keycard-hook claude --no-autostart" in test and 'assert_match "deny"' in test


def test_keycardctl_help_says_keycardd_as_the_brew_test_expects(
    formula: Formula, capsys: pytest.CaptureFixture[str]
) -> None:
    from keycardd.cli import main

    assert 'assert_match "keycardd", shell_output("#{bin}/keycardctl --help")' in formula.block("test do")
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    assert "keycardd" in capsys.readouterr().out


def test_parse_sees_platform_blocks_and_rejects_odd_resources() -> None:
    sample = (
        'class X < Formula\n  depends_on "python@3.13"\n\n  on_linux do\n    depends_on "cryptography"\n\n'
        '    resource "jeepney" do\n      url "u1"\n      sha256 "s1"\n    end\n  end\n\n'
        '  resource "anyio" do\n    url "u2"\n    sha256 "s2"\n  end\nend\n'
    )
    parsed = parse(sample)
    assert [(r.name, r.platform) for r in parsed.resources] == [("jeepney", "linux"), ("anyio", None)]
    assert ("cryptography", None, "linux") in parsed.depends_on
    assert parsed.formulae_on("macos") == {"python@3.13"}
    with pytest.raises(AssertionError):
        parse(sample.replace('    sha256 "s2"\n', ""))
