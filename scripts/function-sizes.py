"""Prints each built function's zipped size (as Lambda receives it) and fails above the limit."""
import io, os, sys, zipfile

LIMIT = 5 * 1024 * 1024  # the project's goal per function
args = [a for a in sys.argv[1:] if not a.startswith("--")]
report_only = "--report-only" in sys.argv
build = args[0]
worst = 0
rows = []
for name in sorted(os.listdir(build)):
    boot = os.path.join(build, name, "bootstrap")
    if not os.path.isfile(boot):
        continue
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.write(boot, "bootstrap")
    size = len(buf.getvalue())
    worst = max(worst, size)
    rows.append((name, os.path.getsize(boot), size))
if not rows:
    sys.exit(f"no bootstrap binaries under {build}")
for name, raw, zipped in rows:
    print(f"{name:32} binary {raw / 1e6:6.2f} MB   zipped {zipped / 1e6:6.2f} MB")
if worst > LIMIT and not report_only:
    sys.exit(f"a function is above {LIMIT / 1e6:.1f} MB zipped")
