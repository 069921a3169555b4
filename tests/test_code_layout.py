"""The house rules of coreLib, checked on its source (parsed, never imported).

Modules of one concern stay a few hundred lines and functions short (the def line
to the last line, docstring included); a model's facts live in its registry record
(coreLib/models), so no code outside that package picks a model by its name.
"""

import ast
import pathlib

MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 60
MODELS_PACKAGE = pathlib.Path("coreLib", "models")
MODEL_NAME_CONSTANTS = ("CONVNET3D_NAME", "LRCN_NAME", "DUMMY_NAME", "CAUSAL_MOBILENET_NAME")


def parsed_modules(repo_root):
    """``(path relative to the repository, source lines, ast)`` of every coreLib module."""
    root = pathlib.Path(repo_root)
    for path in sorted((root / "coreLib").rglob("*.py")):
        text = path.read_text()
        yield path.relative_to(root), text.splitlines(), ast.parse(text, str(path))


def model_names(repo_root):
    """The registry's model names, read from the assignments of MODEL_NAME_CONSTANTS."""
    names = {}
    for relative, _, tree in parsed_modules(repo_root):
        if relative.parent != MODELS_PACKAGE:
            continue
        for node in ast.walk(tree):
            if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
                    and any(isinstance(target, ast.Name) and target.id in MODEL_NAME_CONSTANTS
                            for target in node.targets)):
                names[node.targets[0].id] = node.value.value
    return names


def test_modules_and_functions_are_short(repo_root):
    long_modules, long_functions = [], []
    for relative, lines, tree in parsed_modules(repo_root):
        if len(lines) > MAX_MODULE_LINES:
            long_modules.append(f"{relative}: {len(lines)} lines")
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long_functions.append(f"{relative}:{node.lineno} {node.name}: {length}")
    assert long_modules == [] and long_functions == []


def test_no_code_outside_the_registry_picks_a_model_by_name(repo_root):
    names = model_names(repo_root)
    assert sorted(names) == sorted(MODEL_NAME_CONSTANTS)   # the check sees every name
    found = []
    for relative, _, tree in parsed_modules(repo_root):
        if relative.parent == MODELS_PACKAGE:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in MODEL_NAME_CONSTANTS:
                found.append(f"{relative}:{node.lineno} {node.attr}")
            elif isinstance(node, ast.Name) and node.id in MODEL_NAME_CONSTANTS:
                found.append(f"{relative}:{node.lineno} {node.id}")
            elif isinstance(node, (ast.Compare, ast.Dict)):
                # `name == "LRCN"`, `name in ("LRCN", ...)`, {"LRCN": ...}
                for leaf in ast.walk(node):
                    if isinstance(leaf, ast.Constant) and leaf.value in names.values():
                        found.append(f"{relative}:{leaf.lineno} {leaf.value!r}")
    assert found == []
