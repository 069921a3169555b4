"""The house rules of coreLib, checked on its source (parsed, never imported).

Modules of one concern stay a few hundred lines and functions short (the def line
to the last line, docstring included); a model's facts live in its registry record
(coreLib/models), so no code outside that package picks a model by its name.
Imports go one way (base -> data -> preprocessing -> models -> training -> inference ->
evaluation -> detection / export), so coreLib imports coreLib at module level only:
an import inside a function would hide a cycle (optional third-party imports, such
as matplotlib or cv2, may stay in functions; the entry scripts import the stages
inside main() after parsing, which keeps TensorFlow out of --help and main.py's
workers). A module's _private names are its own. Every module, and every public
module-level function and class, has a docstring (methods that implement an interface,
such as Keras' ``call``, are documented by it). The README's layout table names every
module, in its package's row.
"""

import ast
import pathlib
import re

MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 60
MODELS_PACKAGE = pathlib.Path("coreLib", "models")
MODEL_NAME_CONSTANTS = ("CONVNET3D_NAME", "LRCN_NAME", "DUMMY_NAME", "CAUSAL_MOBILENET_NAME")


ENTRY_SCRIPTS = ("main.py", "train.py", "detect.py", "debug.py", "score.py", "export.py",
                 "videogen.py")


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


def test_modules_and_public_functions_have_docstrings(repo_root):
    missing = []
    for relative, _, tree in parsed_modules(repo_root):
        if ast.get_docstring(tree) is None:
            missing.append(str(relative))
        missing += [f"{relative}:{node.lineno} {node.name}" for node in tree.body
                    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                    and not node.name.startswith("_") and ast.get_docstring(node) is None]
    assert missing == []


def imported_corelib_names(node):
    """The coreLib modules (or names) an import statement imports; [] for others."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names if alias.name.split(".")[0] == "coreLib"]
    if isinstance(node, ast.ImportFrom):
        module = node.module or ""
        if node.level or module.split(".")[0] == "coreLib":
            return [f"{'.' * node.level}{module}.{alias.name}" for alias in node.names]
    return []


def test_corelib_imports_corelib_at_module_level_only(repo_root):
    found = []
    for relative, _, tree in parsed_modules(repo_root):
        for function in ast.walk(tree):
            if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(function):
                found += [f"{relative}:{node.lineno} {function.name}: {name}"
                          for name in imported_corelib_names(node)]
    assert found == []


def test_no_private_name_is_used_outside_its_module(repo_root):
    root = pathlib.Path(repo_root)
    sources = [(relative, tree) for relative, _, tree in parsed_modules(repo_root)]
    sources += [(pathlib.Path(path), ast.parse((root / path).read_text(), path))
                for path in ENTRY_SCRIPTS + tuple(
                    str(script.relative_to(root)) for script in sorted(root.glob("scripts/*.py")))]
    found = []
    for relative, tree in sources:
        modules = set()   # local names bound to coreLib modules or their names
        for node in ast.walk(tree):
            for name in imported_corelib_names(node):
                if name.rsplit(".", 1)[-1].startswith("_") and not name.endswith("__"):
                    found.append(f"{relative}:{node.lineno} imports {name}")
            if isinstance(node, (ast.Import, ast.ImportFrom)) and imported_corelib_names(node):
                modules.update((alias.asname or alias.name).split(".")[0]
                               for alias in node.names)
        for node in ast.walk(tree):
            base = node.value if isinstance(node, ast.Attribute) else None
            while isinstance(base, ast.Attribute):
                base = base.value
            if (isinstance(base, ast.Name) and base.id in modules
                    and node.attr.startswith("_") and not node.attr.endswith("__")):
                found.append(f"{relative}:{node.lineno} {ast.unparse(node)}")
    assert found == []


def test_readme_layout_table_names_every_module(repo_root):
    root = pathlib.Path(repo_root)
    rows = re.findall(r"^\| (base|`\w+`) \| (.*?) \| .*\|$",
                      (root / "README.md").read_text(), re.MULTILINE)
    listed = {package.strip("`"): set(re.findall(r"`([a-z_]\w*)`", modules))
              for package, modules in rows}   # lower case: not `ModelRecord`
    actual = {}
    for path in sorted((root / "coreLib").rglob("*.py")):
        package = path.parent.name if path.parent.name != "coreLib" else "base"
        if path.stem != "__init__" or package == "models":   # models' builders live there
            actual.setdefault(package, set()).add(path.stem)
    assert {package: sorted(modules) for package, modules in listed.items()
            if package in actual} == {package: sorted(modules)
                                      for package, modules in actual.items()}
