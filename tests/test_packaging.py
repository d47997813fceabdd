"""`pip install .` (not editable): prompts and the bundled interviews are found from the installed
package, and `rag ask` works from another directory."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_installed_package_finds_prompts_and_bundled_interviews(tmp_path, cli_env):
    wheels, site, source = tmp_path / "wheels", tmp_path / "site", tmp_path / "source"
    # built from a copy: a build writes egg-info and build/ next to the sources it reads
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".venv", ".git", "*.egg-info", "build", "__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(wheels), str(source)], check=True, capture_output=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site),
                    *map(str, wheels.glob("*.whl"))], check=True, capture_output=True)
    env = {**cli_env, "PYTHONPATH": str(site)}  # the installed copy, ahead of the checkout's editable one
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    probe = ("import rag, json; from rag.settings import BUNDLED_CORPUS; from rag.prompts import load_prompt; "
             "print(json.dumps([rag.__file__, str(BUNDLED_CORPUS), sorted(p.name for p in BUNDLED_CORPUS.iterdir()), "
             "load_prompt('answer').variables]))")
    found = json.loads(subprocess.run([sys.executable, "-c", probe], cwd=elsewhere, env=env, check=True,
                                      capture_output=True, text=True).stdout)
    assert found[0].startswith(str(site)) and found[1].startswith(str(site))
    assert "000_55e02b4d6beaaafa.txt" in found[2] and "passages" in found[3]
    asked = subprocess.run([sys.executable, "-m", "rag", "ask", "What did Askell say about sycophancy?", "--json"],
                           cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300)
    assert asked.returncode == 0, asked.stderr
    assert json.loads(asked.stdout)["citations"]
    assert not os.path.exists(elsewhere / "prompts")
