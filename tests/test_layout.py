"""The tests' own layout: no test module imports another (shared pieces live in support
modules and conftest.py files), and the tests mirror the package: every package under
src/trimtab/ has its tests/<package>/ directory."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent
PACKAGE = TESTS.parent / "src" / "trimtab"


def is_test_module(module: str) -> bool:
    """`tests.x.test_y` (or `tests.test_y`): a module pytest collects tests from."""
    parts = module.split(".")
    return parts[0] == "tests" and parts[-1].startswith("test_")


def imported_test_modules(path: Path) -> list[tuple[int, str]]:
    """(line, module) of each test module `path` imports, also in code it hands to a
    subprocess as a string."""
    found: list[tuple[int, str]] = []
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            modules = [a.name for a in node.names]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if "import" not in node.value:
                continue
            try:
                inner = ast.parse(node.value.strip())
            except SyntaxError:
                continue
            modules = [
                n.module
                for n in ast.walk(inner)
                if isinstance(n, ast.ImportFrom) and n.module and n.level == 0
            ]
        else:
            continue
        found += [(node.lineno, m) for m in modules if is_test_module(m)]
    return found


def test_no_test_module_imports_another() -> None:
    offenders = [
        f"{path.relative_to(TESTS.parent)}:{line} imports {module}"
        for path in sorted(TESTS.rglob("*.py"))
        for line, module in imported_test_modules(path)
    ]
    assert offenders == [], "move what they share into a support module or a conftest.py"


def test_the_check_sees_an_import_of_a_test_module(tmp_path: Path) -> None:
    """The check is not vacuous: each way of importing a test module is found."""
    module = tmp_path / "test_sample.py"
    tests = "tests"  # not literal imports: this file's own strings are checked too
    module.write_text(
        f"from {tests}.api.test_routes_api import OPERATOR_KEY\n"
        f"from {tests}.gateway import test_openai_sdk\n"
        f"import {tests}.e2e.test_graceful_stop\n"
        f"from {tests}.support import ROUTES\n"
        f"SCRIPT = '''\nfrom {tests}.telemetry.test_recorder import records\n'''\n"
    )
    assert [module for _, module in imported_test_modules(module)] == [
        "tests.api.test_routes_api",
        "tests.gateway.test_openai_sdk",
        "tests.e2e.test_graceful_stop",
        "tests.telemetry.test_recorder",
    ]


def test_every_package_has_its_tests_directory() -> None:
    packages = sorted(p.parent.name for p in PACKAGE.glob("*/__init__.py"))
    assert "gateway" in packages  # the glob found the package
    missing = [name for name in packages if not (TESTS / name / "__init__.py").is_file()]
    assert missing == [], f"packages without tests/<package>/: {missing}"
