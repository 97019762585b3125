"""Texts of one language for the isotropy measure, the decoding prefixes and the tiny LMs' training corpus.

    python -m experiments.anisotropy.texts --langs en de ru --source fortunes --seed 0 --n-eval 30 \
        --n-prompts 48 --prompt-min-chars 200 --n-val 200 --min-chars 20 --max-chars 1000 --out-dir DIR
    # -> DIR/<lang>/eval.jsonl, prompts.jsonl, train.txt, val.txt, status.json

Sources:
- fortunes (mini): the language's Debian fortunes (experiments.data.fortunes: encodings, `%` separators, rot13,
  dedup, script filter), in one seeded permutation. The first n_eval texts are the isotropy sample; the next
  texts of at least prompt_min_chars characters (n_prompts of them) are decoding-prefix candidates; the next
  n_val are the tiny LM's validation documents; every other text is its training corpus. So the isotropy texts
  and the prefixes are held out from training.
- wit (paper): the paper's `wit_test_set.json` (a dict language -> list of strings, from the repository's
  data/wit.zip): strip, drop strings shorter than 2 characters, keep the first n_eval, in file order (the paper
  samples nothing). No prompts, no training corpus.
- webtext (paper decoding prefixes, English): a WebText jsonl (one {"text": ...} per line): the first n_prompts
  documents in file order as prefix candidates (the decode step keeps those long enough in tokens).

A language whose data is absent (the Debian package is not installed) is not an error: every output is written
empty and status.json says `"available": false` with a "not run: missing data (...)" note, which the
downstream rows carry. A missing WIT or WebText file is an error (the paper run needs it).

Every text keeps where it came from (source file, package, encoding) in eval.jsonl / prompts.jsonl; status.json
lists the source files with their package versions and the counts per split.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from experiments.data.fortunes import FORTUNES_ROOT, probe_language, scan_language, seeded_sample
from experiments.errors import MissingArtifactError
from experiments.files import atomic_write_text
from experiments.lm.tokenizer import documents_text


def _row(i: int, lang: str, t) -> dict:
    return dict(id=f"{lang}-{i}", lang=lang, text=t.text, source_file=t.source_file, package=t.package,
                encoding=t.encoding)


def split_fortunes(lang: str, *, seed: int, n_eval: int, n_prompts: int, prompt_min_chars: int, n_val: int,
                   root: str | Path = FORTUNES_ROOT, **filters) -> dict:
    """{"eval", "prompts", "train", "val": rows, "status": dict} for one fortunes language (see module doc)."""
    status = probe_language(lang, root=root)
    if not status.available:
        return dict(eval=[], prompts=[], train=[], val=[],
                    status=dict(lang=lang, source="fortunes", available=False, note=status.note, files=[]))
    data = scan_language(lang, root=root, **filters)
    texts = seeded_sample(data.texts, len(data.texts), seed)  # the whole language, one seeded order
    rows = [_row(i, lang, t) for i, t in enumerate(texts)]
    if n_eval > len(rows):
        raise ValueError(f"{lang}: asked for {n_eval} isotropy texts, the fortunes have {len(rows)}")
    eval_rows, rest = rows[:n_eval], rows[n_eval:]
    prompts = [r for r in rest if len(r["text"]) >= prompt_min_chars][:n_prompts]
    taken = {r["id"] for r in prompts}
    rest = [r for r in rest if r["id"] not in taken]
    val, train = rest[:n_val], rest[n_val:]
    files = [dict(path=f.path, package=f.package, version=f.version, encoding=f.encoding, kept=f.kept)
             for f in data.used_files]
    return dict(eval=eval_rows, prompts=prompts, train=train, val=val, status=dict(
        lang=lang, source="fortunes", available=True, note="", n_texts=len(rows), n_eval=len(eval_rows),
        n_prompts=len(prompts), n_val=len(val), n_train=len(train), files=files,
        dropped=dict(sorted(data.dropped.items()))))


def read_wit(path: str | Path, lang: str, n_eval: int) -> dict:
    path = Path(path)
    if not path.is_file():
        raise MissingArtifactError(f"WIT test set {str(path)!r}", "unzip data/wit.zip of "
                                   "yxuansu/Contrastive_Search_Is_What_You_Need (wit/wit_test_set.json)",
                                   detail="file not found")
    data = json.loads(path.read_text(encoding="utf-8"))
    if lang not in data:
        return dict(eval=[], prompts=[], train=[], val=[], status=dict(
            lang=lang, source="wit", available=False, files=[str(path)],
            note=f"not run: missing data (no {lang!r} key in {path.name})"))
    texts = [s.strip() for s in data[lang] if len(s.strip()) >= 2][:n_eval]
    rows = [dict(id=f"{lang}-{i}", lang=lang, text=t, source_file=str(path), package="wit", encoding="utf-8")
            for i, t in enumerate(texts)]
    return dict(eval=rows, prompts=[], train=[], val=[], status=dict(
        lang=lang, source="wit", available=True, note="", n_eval=len(rows), files=[str(path)]))


def read_webtext(path: str | Path, lang: str, n_prompts: int) -> dict:
    path = Path(path)
    if not path.is_file():
        raise MissingArtifactError(f"WebText test split {str(path)!r}", "data/webtext/webtext.test.jsonl of "
                                   "yxuansu/Contrastive_Search_Is_What_You_Need (or openai/gpt-2-output-dataset)",
                                   detail="file not found")
    rows = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if len(rows) >= n_prompts:
                break
            if line.strip():
                rows.append(dict(id=f"{lang}-{len(rows)}", lang=lang, text=json.loads(line)["text"].strip(),
                                 source_file=str(path), package="webtext", encoding="utf-8"))
    return dict(eval=[], prompts=rows, train=[], val=[], status=dict(
        lang=lang, source="webtext", available=True, note="", n_prompts=len(rows), files=[str(path)]))


def write_outputs(parts: dict, out: dict[str, Path]) -> None:
    for name in ("eval", "prompts"):
        atomic_write_text(out[name], "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in parts[name]))
    for name in ("train", "val"):  # documents separated by EOT lines (experiments.lm.tokenizer.iter_documents)
        atomic_write_text(out[name], documents_text(r["text"] for r in parts[name]))
    atomic_write_text(out["status"], json.dumps(parts["status"], indent=1, ensure_ascii=False))


def read_jsonl(path: str | Path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def read_status(path: str | Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


FILES = {"eval": "eval.jsonl", "prompts": "prompts.jsonl", "train": "train.txt", "val": "val.txt",
         "status": "status.json"}


def language_files(out_dir: str | Path, lang: str) -> dict[str, Path]:
    """Where the texts of `lang` go under out_dir (the rules name the same files: workflow/rules/anisotropy.smk)."""
    return {name: Path(out_dir) / lang / f for name, f in FILES.items()}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--langs", nargs="+", required=True, help="one job for all languages (start-up paid once)")
    ap.add_argument("--source", choices=["fortunes", "wit", "webtext"], required=True)
    ap.add_argument("--path", default=None, help="wit_test_set.json (wit) or webtext.test.jsonl (webtext)")
    ap.add_argument("--root", default=str(FORTUNES_ROOT), help="fortunes root (tests point it elsewhere)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-eval", type=int, required=True)
    ap.add_argument("--n-prompts", type=int, default=0)
    ap.add_argument("--prompt-min-chars", type=int, default=200)
    ap.add_argument("--n-val", type=int, default=0)
    ap.add_argument("--min-chars", type=int, required=True)
    ap.add_argument("--max-chars", type=int, required=True)
    ap.add_argument("--out-dir", required=True, help="writes OUT_DIR/<lang>/{" + ",".join(FILES.values()) + "}")
    args = ap.parse_args(argv)
    if args.source != "fortunes" and args.path is None:
        ap.error(f"--source {args.source} needs --path")
    for lang in args.langs:
        if args.source == "fortunes":
            parts = split_fortunes(lang, seed=args.seed, n_eval=args.n_eval, n_prompts=args.n_prompts,
                                   prompt_min_chars=args.prompt_min_chars, n_val=args.n_val, root=args.root,
                                   min_chars=args.min_chars, max_chars=args.max_chars)
        elif args.source == "wit":
            parts = read_wit(args.path, lang, args.n_eval)
        else:
            parts = read_webtext(args.path, lang, args.n_prompts)
        write_outputs(parts, language_files(args.out_dir, lang))
        s = parts["status"]
        print(f"{lang} ({args.source}): " + (s["note"] if not s["available"] else
              ", ".join(f"{k} {len(parts[k])}" for k in ("eval", "prompts", "val", "train"))), flush=True)


if __name__ == "__main__":
    main()
