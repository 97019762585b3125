"""Compare the outputs of two runs of the same targets (tests/slurm/run.sh: through SLURM vs locally).

    python tests/slurm/compare.py DIR_A DIR_B results resources

Every file under the given subdirectories must exist in both runs with the same sha256, except for
wall-clock times, which differ between any two runs while the numbers do not: CSVs with a column named in
TIMING_KEYS (the training curve's `seconds`) are compared without those columns, JSON files (the model's
training.json) without those keys. Exit 1 on any difference, with each difference named.
"""
import csv
import hashlib
import json
import sys
from pathlib import Path

TIMING_KEYS = {"seconds"}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def csv_without_timing(path: Path):
    """(header, rows) without timing columns, or None when the CSV has no timing column."""
    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    if not rows or not TIMING_KEYS & set(rows[0]):
        return None
    keep = [i for i, name in enumerate(rows[0]) if name not in TIMING_KEYS]
    return [[row[i] for i in keep if i < len(row)] for row in rows]


def json_without_timing(path: Path):
    """The parsed JSON without timing keys (at any depth), or None when it has none."""
    found = False

    def strip(obj):
        nonlocal found
        if isinstance(obj, dict):
            found = found or bool(TIMING_KEYS & set(obj))
            return {k: strip(v) for k, v in obj.items() if k not in TIMING_KEYS}
        if isinstance(obj, list):
            return [strip(v) for v in obj]
        return obj

    stripped = strip(json.loads(path.read_text()))
    return stripped if found else None


WITHOUT_TIMING = {".csv": csv_without_timing, ".json": json_without_timing}


def files(root: Path, subdirs):
    """Relative paths of the files under root/subdirs, without Snakemake's directory-output markers."""
    return {p.relative_to(root) for d in subdirs for p in (root / d).rglob("*")
            if p.is_file() and p.name != ".snakemake_timestamp"}


def main(argv):
    a, b, subdirs = Path(argv[0]), Path(argv[1]), argv[2:]
    fa, fb = files(a, subdirs), files(b, subdirs)
    problems = [f"only in {a}: {p}" for p in sorted(fa - fb)] + [f"only in {b}: {p}" for p in sorted(fb - fa)]
    same = timing_only = 0
    for rel in sorted(fa & fb):
        if sha256(a / rel) == sha256(b / rel):
            same += 1
            continue
        if rel.suffix in WITHOUT_TIMING:
            ta, tb = WITHOUT_TIMING[rel.suffix](a / rel), WITHOUT_TIMING[rel.suffix](b / rel)
            if ta is not None and ta == tb:
                timing_only += 1
                print(f"  same except timing {sorted(TIMING_KEYS)}: {rel}")
                continue
        problems.append(f"differs: {rel}")
    print(f"compared {len(fa & fb)} files: {same} byte-identical, {timing_only} identical without timings")
    for p in problems:
        print("  " + p)
    if not fa & fb:
        problems.append("no files compared")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
