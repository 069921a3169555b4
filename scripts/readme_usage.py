"""Keeps the usage blocks of README.md equal to what each script's --help prints.

README.md marks each block with an HTML comment naming the script:

    <!-- usage: main.py -->
    ```
    ...output of `python main.py --help`...
    ```

`python scripts/readme_usage.py` rewrites the blocks; `--check` only compares and
exits 1 naming the scripts whose block is stale (tests/test_readme.py runs it).
Help text is produced at a fixed width (COLUMNS=88) so it does not depend on the
terminal.
"""

import argparse
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(REPO_ROOT, "README.md")
HELP_COLUMNS = "88"
BLOCK = re.compile(r"(<!-- usage: (?P<script>[\w./ -]+?) -->\n```text\n)(?P<body>.*?)(```)",
                   re.DOTALL)


def help_text(script: str) -> str:
    """What ``python <script> --help`` prints (script may be 'coreLib.synthetic' for -m)."""
    command = [sys.executable]
    command += ["-m", script] if not script.endswith(".py") else [script]
    env = {**os.environ, "COLUMNS": HELP_COLUMNS, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(command + ["--help"], cwd=REPO_ROOT, capture_output=True,
                            text=True, env=env, check=True)
    return result.stdout


def refresh(readme_text: str):
    """Returns (new README text, names of scripts whose block changed). The scripts'
    --help runs as many at a time as there are CPUs (each loads TensorFlow)."""
    stale = []
    scripts = sorted({match.group("script") for match in BLOCK.finditer(readme_text)})
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        helps = dict(zip(scripts, pool.map(help_text, scripts)))

    def replace(match):
        script = match.group("script")
        body = helps[script]
        if body != match.group("body"):
            stale.append(script)
        return match.group(1) + body + match.group(4)

    return BLOCK.sub(replace, readme_text), stale


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="compare only; exit 1 when a block is stale")
    args = parser.parse_args()
    with open(README, encoding="utf-8") as handle:
        text = handle.read()
    new_text, stale = refresh(text)
    if args.check:
        if stale:
            print("stale usage in README.md: " + ", ".join(stale), file=sys.stderr)
            return 1
        return 0
    if new_text != text:
        with open(README, "w", encoding="utf-8") as handle:
            handle.write(new_text)
    print("updated: " + (", ".join(stale) if stale else "nothing"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
