"""The README's Python example runs as written and prints what it promises."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_readme_python_example_runs_against_the_sandbox(tmp_path: Path) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert len(blocks) == 1
    script = tmp_path / "example.py"
    script.write_text(blocks[0], encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    state_line, ids_line, estimate_line = done.stdout.strip().splitlines()
    assert state_line.startswith("completed http://127.0.0.1:")
    assert state_line.endswith(".mp4")
    assert len(set(ast.literal_eval(ids_line))) == 2
    assert ast.literal_eval(estimate_line)["estimate_usd"] == 2.28
