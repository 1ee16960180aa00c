"""Small plugins written into temporary folders by the tests."""

GOOD_MANIFEST = """
name = "toy"
title = "Toy plugin"
version = "0.3.0"
category = "Testing"
contributors = ["medface tests"]
help = "Adds numbers; writes a marker file when its code runs."
requirements = ["numpy>=1.0"]
selftest = "toy_pkg.commands:selftest"

[[commands]]
id = "add"
help = "Add two numbers."
python_name = "toy_pkg.commands:add"

[[commands.parameters]]
name = "a"
type = "float"
min = -10.0
max = 10.0
units = "mm"
help = "First number."

[[commands.parameters]]
name = "b"
type = "int"
default = 1
min = 0
max = 5
help = "Second number."

[[commands.parameters]]
name = "mode"
type = "enum"
choices = ["plain", "double"]
default = "plain"
help = "Doubling or not."

[[commands.parameters]]
name = "verbose"
type = "bool"
default = false
help = "Say more."

[[commands.parameters]]
name = "seed"
type = "int"
default = 0
min = 0
help = "Random seed."

[[commands.parameters]]
name = "marker"
type = "file"
channel = "output"
required = false
help = "Written when the command's code runs."

[[commands.parameters]]
name = "out"
type = "directory"
channel = "output"
required = false
help = "Result folder."

[[commands]]
id = "crash"
help = "Raises an unexpected exception (a bug)."
python_name = "toy_pkg.commands:crash"
"""

GOOD_CODE = """
from medface.data import Result

IMPORTED = True


def add(a, b=1, mode="plain", verbose=False, seed=0, marker=None, out=None, context=None):
    if marker is not None:
        marker.write_text("ran")
    total = (a + b) * (2 if mode == "double" else 1)
    return Result(command="toy.add", summary={"total": total, "seed_seen": context.seed})


def crash():
    raise ZeroDivisionError("boom")


def selftest(workdir):
    import medface
    assert medface.run("toy.add", a=1, b=2).summary["total"] == 3
    return "adds"
"""

MISSING_REQUIREMENT = GOOD_MANIFEST.replace('name = "toy"', 'name = "needy"').replace(
    'requirements = ["numpy>=1.0"]', 'requirements = ["surely-not-installed-pkg>=1"]').replace("toy_pkg", "needy_pkg")

IMPORT_FAILS = GOOD_MANIFEST.replace('name = "toy"', 'name = "fragile"').replace("toy_pkg", "fragile_pkg")
IMPORT_FAILS_CODE = "import surely_not_installed_module\n" + GOOD_CODE

INVALID_MANIFEST = """
name = "invalid"
title = "Invalid"
version = "1"
category = "Testing"
contributors = []
help = "x"
commands = []
"""
