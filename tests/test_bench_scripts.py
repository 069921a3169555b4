"""bench/ stays one family (issue 23): every benchmark script writes its figures
through bench_common to the file ``--output`` names, and ``make bench`` runs or
names every one. Read from the files (AST and text): no benchmark runs here."""

import ast
import os
import re

# The MoViNet side of bench/peers.py, run by it inside .venv-peers: a worker that
# answers peers.py, not a benchmark of its own.
WORKERS = {"peers_movinet.py"}


def _bench_scripts(repo_root):
    folder = os.path.join(repo_root, "bench")
    return sorted(name for name in os.listdir(folder)
                  if name.endswith(".py") and name != "bench_common.py")


def test_every_bench_script_writes_through_bench_common_to_output(repo_root):
    scripts = [name for name in _bench_scripts(repo_root) if name not in WORKERS]
    assert len(scripts) >= 14, scripts
    for name in scripts:
        with open(os.path.join(repo_root, "bench", name), encoding="utf-8") as handle:
            tree = ast.parse(handle.read())
        imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                    for alias in node.names}
        assert "bench_common" in imported, name
        calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)]
        options = {node.args[0].value for node in calls
                   if isinstance(node.func, ast.Attribute)
                   and node.func.attr == "add_argument" and node.args
                   and isinstance(node.args[0], ast.Constant)}
        assert "--output" in options and not {"--out", "--output-json"} & options, name
        written = [node for node in calls if isinstance(node.func, ast.Attribute)
                   and node.func.attr == "write_results"
                   and ast.unparse(node.args[0]) == "args.output"]
        assert written, f"{name}: bench_common.write_results(args.output, ...)"


def test_make_bench_runs_or_names_every_bench_script(repo_root):
    with open(os.path.join(repo_root, "Makefile"), encoding="utf-8") as handle:
        makefile = handle.read()
    recipe = re.search(r"^bench: .*?\n((?:\t.*\n)+)", makefile, re.MULTILINE).group(1)
    for name in _bench_scripts(repo_root):
        assert f"bench/{name}" in recipe, name
