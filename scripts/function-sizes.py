"""The functions' zipped sizes, as Lambda receives them, against the budget.

    python3 scripts/function-sizes.py [--report-only] DIR
    python3 scripts/function-sizes.py --largest DIR
    python3 scripts/function-sizes.py --only CRATE DIR

DIR holds one directory per function with its `bootstrap` (a `sam build` directory, or cargo
lambda's `target/lambda`). Each bootstrap is zipped at level 9 and the sizes are printed; the
script fails if one is above 4 MB (4,000,000 bytes), unless `--report-only`. `--largest` prints
only the crate name of the function with the largest binary (`ValidateCutoverFunction` and
`validate-cutover` both give `validate-cutover`), for building that one in the real release
profile; it zips nothing, since it is used on unoptimized builds whose zipped size means
nothing and whose binaries take minutes to zip. `--only` looks at that one function alone."""
import io, os, re, sys, zipfile

LIMIT = 4_000_000  # bytes zipped: the goal per function (docs/performance.md)

argv = sys.argv[1:]
report_only = "--report-only" in argv
only = None
if "--only" in argv:
    i = argv.index("--only")
    if i + 1 >= len(argv):
        sys.exit(__doc__)
    only = argv.pop(i + 1)
args = [a for a in argv if not a.startswith("--")]
if len(args) != 1:
    sys.exit(__doc__)
build = args[0]

def crate(name):
    """`ValidateCutoverFunction` (a template's logical id) or `validate-cutover`: the crate."""
    if name.endswith("Function"):
        name = re.sub(r"(?<!^)([A-Z])", r"-\1", name[: -len("Function")]).lower()
    return name


largest = "--largest" in argv
rows = []
for name in sorted(os.listdir(build)):
    boot = os.path.join(build, name, "bootstrap")
    if not os.path.isfile(boot) or (only and crate(name) != only):
        continue
    if largest:
        rows.append((name, os.path.getsize(boot), None))
        continue
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.write(boot, "bootstrap")
    rows.append((name, os.path.getsize(boot), len(buf.getvalue())))
if not rows:
    sys.exit(f"no bootstrap binaries under {build}")


if largest:
    print(crate(max(rows, key=lambda r: r[1])[0]))
    sys.exit(0)
for name, raw, zipped in rows:
    flag = "  above the budget" if zipped > LIMIT and not report_only else ""
    print(f"{name:32} binary {raw / 1e6:6.2f} MB   zipped {zipped / 1e6:6.2f} MB{flag}")
worst = max(r[2] for r in rows)
if worst > LIMIT and not report_only:
    sys.exit(f"a function is above {LIMIT / 1e6:.1f} MB zipped")
