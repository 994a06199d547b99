"""cnnlab's packages import one way, bottom to top (pyproject.toml's import-linter contract).

A function-level import counts too: the contract is checked on every import statement.
"""

from pathlib import Path

from importlinter.cli import lint_imports

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def test_imports_follow_the_layers(capsys):
    status = lint_imports(config_filename=str(PYPROJECT), no_cache=True, no_logo=True)
    report = capsys.readouterr().out
    assert status == 0, report
    assert "layers KEPT" in report
