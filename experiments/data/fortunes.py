"""Real human text in 13 languages from Debian's ``fortunes*`` packages.

    texts = read_language("ru")                       # [FortuneText(text, source_file, package, encoding), ...]
    sample = seeded_sample(texts, 200, seed=0)        # the same 200 for the same seed; a prefix of a larger n
    status = probe_language("zh")                     # never raises for a missing package: status.note
    python -m experiments.data.fortunes --summary     # per language: files, texts, chars, encodings

Where the packages put their files (``dpkg -L``, all under /usr/share/games/fortunes):

    en     fortunes, fortunes-min   top-level files (art, computers, ..., fortunes, literature, riddles)
    bg     fortunes-bg              bg/
    pt-BR  fortunes-br              brasil (one top-level file)
    cs     fortunes-cs              cs/ (cz/ and sk/ are symlinks into it)
    sk     fortunes-cs              cs/klasik-sk (the one Slovak file)
    de     fortunes-de              de/ (its .dat index files are under /usr/share/games/fortunes-de)
    eo     fortunes-eo              eo/
    es     fortunes-es              es/ (es/off/: rot13-encoded offensive fortunes)
    ga     fortunes-ga              ga/
    it     fortunes-it              it/ (the package also links every file into the top level)
    pl     fortunes-pl              pl/ (its *.u8 are empty regular files)
    ru     fortunes-ru              ru/
    zh     fortunes-zh              chinese, song100, tang300 (top-level files)

How each file is read:
- Skipped: strfile index files (``*.dat``), symlinks (the ``*.u8`` links, cz/, sk/, the top-level links of
  fortunes-it), empty files, files that dpkg says belong to another language's package. Each source file is
  recorded by its real path with its package and version (from /var/lib/dpkg).
- Encoding per file: strict UTF-8 first; otherwise each legacy encoding these packages were known to use for the
  language (KOI8-R/CP1251/CP866/ISO-8859-5 for ru and bg; GB2312/GBK/GB18030/Big5 for zh; ISO-8859-2/CP1250 for
  cs/sk/pl; ISO-8859-3 for eo; CP1252/ISO-8859-15/ISO-8859-1 for the other Latin languages) is tried strictly and
  the most plausible decoding wins (share of the language's own non-ASCII letters, of lower-case Cyrillic, or of
  frequent Chinese characters). The installed packages (Debian 12) are all UTF-8; the legacy paths are for older
  releases and are tested on synthetic files.
- rot13: a file whose strfile index has the STR_ROTATED flag (es/off/*, and the historical English off/ files)
  is rot13-decoded (ASCII letters only, as strfile -x does). Files under an ``off/`` directory are offensive by
  Debian's convention and are excluded unless ``offensive=True``; either way the file record says so.
- Cleaning: CRLF -> LF, ANSI colour escapes (fortunes-zh), overstrike ``x\\bx`` / ``_\\bx`` (fortunes),
  mIRC control codes (pl/argante), soft hyphens, double-encoded UTF-8 (mojibake such as ``â\\x80\\x99``, repaired
  when the run re-decodes as UTF-8), stray C1 controls (read as CP1252), other control and private-use characters.
- Entries are separated by lines holding only ``%`` (trailing whitespace allowed; the delimiter comes from the
  .dat header when there is one). By default the trailing attribution (``-- Author`` and its indented
  continuation lines) is dropped, so a text is the fortune's own words (``keep_attribution=True`` keeps it).
  Whitespace is collapsed to single spaces (``keep_newlines=True`` keeps one newline between lines).
- Filters, in this order: empty, too short / too long (characters, after cleaning), too few letters (ASCII art,
  code: letters / non-space characters < ``letter_share``), wrong script (letters of the language's script /
  all letters < ``script_share``: Cyrillic for ru/bg, Han for zh, Latin otherwise), exact duplicate (first
  occurrence kept; files in sorted path order). Every drop is counted per reason.
"""
from __future__ import annotations

import argparse
import codecs
import os
import re
import struct
import sys
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

from experiments.errors import MissingArtifactError

FORTUNES_ROOT = Path("/usr/share/games/fortunes")
DPKG_DIR = Path("/var/lib/dpkg")

# defaults of the filters (the pipeline's config sets its own values)
MIN_CHARS = 20          # a text shorter than a short sentence says little about a sequence's geometry
MAX_CHARS = 1000        # longer entries are lists, logs and chat transcripts; texts are cut to tokens later anyway
SCRIPT_SHARE = 0.8      # share of letters in the language's script
LETTER_SHARE = 0.5      # share of letters among non-space characters (drops ASCII art and code)

_LATIN_PUNCT = "’‘“”„«»–—…¡¿°§€"
_CYRILLIC_ENCODINGS = ("koi8_r", "cp1251", "cp866", "iso8859_5")
_LATIN1_ENCODINGS = ("cp1252", "iso8859_15", "iso8859_1")
_LATIN2_ENCODINGS = ("iso8859_2", "cp1250")
# frequent characters of simplified and traditional Chinese prose and classical poetry: a correct decoding has
# ~10-30% of its non-ASCII characters here, a GB <-> Big5 mis-decoding well under 1%
_FREQUENT_HAN = frozenset(
    "的一是不了在人有我他这這个個们們中来來上大为為和国國地到以说說时時要就出会會可也你对對生能而子那得于於"
    "着著下自之年过過发發后後作里裡用道行所然家种種事成方多经經么麼去法学學如都同现現当當没沒无無山日月风風"
    "春花水天心其此与與君何"
)


@dataclass(frozen=True)
class LanguageSpec:
    """Where one language's fortunes live and how to judge a decoding of them."""

    lang: str
    name: str
    package: str                         # the Debian package that ships the files
    paths: tuple[str, ...]               # relative to the root: files, directories (recursive), "." = top level
    script: str                          # "Latin" | "Cyrillic" | "Han"
    legacy_encodings: tuple[str, ...]    # tried (strictly) when a file is not UTF-8
    letters: str = ""                    # the language's own non-ASCII letters (Latin scripts)
    exclude: tuple[str, ...] = ()        # relative paths under `paths` that belong to another language
    extra_packages: tuple[str, ...] = ()  # other packages whose files count for this language

    @property
    def packages(self) -> tuple[str, ...]:
        return (self.package,) + self.extra_packages

    @property
    def install_hint(self) -> str:
        return f"Install it: sudo apt-get install {' '.join(self.packages)}"


def _caps(s: str) -> str:
    return s + s.upper()


LANGUAGES: dict[str, LanguageSpec] = {s.lang: s for s in (
    LanguageSpec("en", "English", "fortunes", (".", "off"), "Latin", _LATIN1_ENCODINGS, _caps("éèêëïöüçñ"),
                 extra_packages=("fortunes-min",)),
    LanguageSpec("bg", "Bulgarian", "fortunes-bg", ("bg",), "Cyrillic", ("cp1251", "koi8_r", "iso8859_5", "cp866")),
    LanguageSpec("pt-BR", "Portuguese (Brazil)", "fortunes-br", ("brasil",), "Latin", _LATIN1_ENCODINGS,
                 _caps("áâãàçéêíóôõúü")),
    LanguageSpec("cs", "Czech", "fortunes-cs", ("cs",), "Latin", _LATIN2_ENCODINGS, _caps("áčďéěíňóřšťúůýž"),
                 exclude=("cs/klasik-sk",)),
    LanguageSpec("sk", "Slovak", "fortunes-cs", ("cs/klasik-sk",), "Latin", _LATIN2_ENCODINGS,
                 _caps("áäčďéíĺľňóôŕšťúýž")),
    LanguageSpec("de", "German", "fortunes-de", ("de",), "Latin", _LATIN1_ENCODINGS, _caps("äöü") + "ß"),
    LanguageSpec("eo", "Esperanto", "fortunes-eo", ("eo",), "Latin", ("iso8859_3",) + _LATIN1_ENCODINGS,
                 _caps("ĉĝĥĵŝŭ")),
    LanguageSpec("es", "Spanish", "fortunes-es", ("es",), "Latin", _LATIN1_ENCODINGS, _caps("áéíóúñü")),
    LanguageSpec("ga", "Irish", "fortunes-ga", ("ga",), "Latin", _LATIN1_ENCODINGS, _caps("áéíóú")),
    LanguageSpec("it", "Italian", "fortunes-it", ("it",), "Latin", _LATIN1_ENCODINGS, _caps("àèéìíòóùú")),
    LanguageSpec("pl", "Polish", "fortunes-pl", ("pl",), "Latin", _LATIN2_ENCODINGS, _caps("ąćęłńóśźż")),
    LanguageSpec("ru", "Russian", "fortunes-ru", ("ru",), "Cyrillic", _CYRILLIC_ENCODINGS),
    LanguageSpec("zh", "Chinese", "fortunes-zh", ("chinese", "song100", "tang300"), "Han",
                 ("gb2312", "gbk", "gb18030", "big5")),
)}


@dataclass(frozen=True)
class FortuneText:
    text: str
    source_file: str   # real path of the file it came from
    package: str       # Debian package that ships that file
    encoding: str      # how that file was decoded


@dataclass(frozen=True)
class FileInfo:
    """One candidate source file of a language and what became of it."""

    path: str                  # real path
    package: str
    version: str | None        # installed version (None: dpkg does not know the package)
    status: str                # "used" | "skipped: <reason>"
    encoding: str | None = None
    rot13: bool = False
    offensive: bool = False
    entries: int = 0           # %-separated entries in the file
    kept: int = 0              # texts kept from it (after filters and dedup)


@dataclass
class LanguageData:
    lang: str
    texts: list[FortuneText]
    files: list[FileInfo]
    dropped: Counter = field(default_factory=Counter)   # reason -> count

    @property
    def used_files(self) -> list[FileInfo]:
        return [f for f in self.files if f.status == "used"]

    @property
    def encodings(self) -> Counter:
        """encoding -> number of used files decoded with it."""
        return Counter(f.encoding for f in self.used_files)

    @property
    def n_chars(self) -> int:
        return sum(len(t.text) for t in self.texts)


@dataclass(frozen=True)
class LanguageStatus:
    """What `probe_language` found: whether the language can be read, and a row text when it cannot."""

    lang: str
    available: bool
    packages: tuple[str, ...]
    n_files: int
    note: str        # "" when available, else "not run: missing data (...)"


class MissingFortunesError(MissingArtifactError):
    """A language's Debian fortunes package is not installed (no source files under the root)."""


# ---- packages (dpkg) --------------------------------------------------------------------------------------------

@lru_cache(maxsize=8)
def _dpkg_versions(dpkg_dir: str) -> dict[str, str]:
    """Installed package -> version, from dpkg's status file ({} when there is none)."""
    path = Path(dpkg_dir) / "status"
    if not path.is_file():
        return {}
    out: dict[str, str] = {}
    for para in path.read_text(encoding="utf-8", errors="replace").split("\n\n"):
        fields = dict(re.findall(r"^([A-Za-z-]+): ?(.*)$", para, flags=re.M))
        if fields.get("Package", "").startswith("fortune") and fields.get("Status", "").endswith(" installed"):
            out[fields["Package"]] = fields.get("Version", "")
    return out


@lru_cache(maxsize=8)
def _dpkg_owners(dpkg_dir: str) -> dict[str, str]:
    """Real path -> owning package for every file of an installed fortunes* package ({} without dpkg)."""
    info = Path(dpkg_dir) / "info"
    out: dict[str, str] = {}
    if not info.is_dir():
        return out
    for lst in sorted(info.glob("fortune*.list")):
        pkg = lst.name[: -len(".list")].split(":")[0]
        for line in lst.read_text(encoding="utf-8", errors="replace").splitlines():
            p = Path(line.strip())
            if line.strip() and p.is_file() and not p.is_symlink():
                out[str(p.resolve())] = pkg
    return out


# ---- decoding -----------------------------------------------------------------------------------------------------

STR_ROTATED = 0x4  # strfile flag: the text is rot13-encoded


def read_dat_header(path: Path) -> tuple[int, str] | None:
    """(flags, delimiter) from a strfile .dat index (big-endian header), or None when absent or unreadable."""
    try:
        head = path.read_bytes()[:24]
    except OSError:
        return None
    if len(head) < 21:
        return None
    _version, _numstr, _longlen, _shortlen, flags = struct.unpack(">5I", head[:20])
    return flags, chr(head[20])


def rot13(text: str) -> str:
    """rot13 of ASCII letters only (accented letters stay, as with strfile -x)."""
    return codecs.encode(text, "rot13")


_RE_CYR_LOWER = re.compile(r"[а-яёіїєґўђѓјљњћќџ]")
_RE_NON_ASCII = re.compile(r"[^\x00-\x7f]")


def _plausibility(text: str, spec: LanguageSpec) -> float:
    """How much a decoding looks like the language: share of its non-ASCII characters that are expected ones."""
    n = len(_RE_NON_ASCII.findall(text))
    if n == 0:
        return 1.0
    if spec.script == "Cyrillic":
        good = len(_RE_CYR_LOWER.findall(text))
    elif spec.script == "Han":
        good = sum(c in _FREQUENT_HAN for c in text)
    else:
        expected = set(spec.letters + _LATIN_PUNCT)
        good = sum(c in expected for c in text if ord(c) > 127)
    return good / n


def decode_file_bytes(data: bytes, spec: LanguageSpec) -> tuple[str, str]:
    """(text, encoding): strict UTF-8 if it decodes, else the most plausible strict legacy decoding
    (ties: the earlier encoding in spec.legacy_encodings), else UTF-8 with replacement characters."""
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        pass
    best: tuple[float, str, str] | None = None
    for enc in spec.legacy_encodings:
        try:
            text = data.decode(enc)
        except UnicodeDecodeError:
            continue
        score = _plausibility(text, spec)
        if best is None or score > best[0]:
            best = (score, text, codecs.lookup(enc).name)
    if best is not None:
        return best[1], best[2]
    return data.decode("utf-8", errors="replace"), "utf-8 (with replacements)"


# ---- cleaning -----------------------------------------------------------------------------------------------------

_RE_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b")
_RE_OVERSTRIKE = re.compile(r"[^\n\x08]\x08")
_RE_MIRC = re.compile(r"\x03(?:\d{1,2}(?:,\d{1,2})?)?|[\x02\x0f\x16\x1d\x1f]")
_RE_SOFT_HYPHEN_EOL = re.compile(r"\xad\n[ \t]*")
_RE_MOJIBAKE_RUN = re.compile(r"[\x80-\xff]{2,}")
_RE_C1 = re.compile(r"[\x80-\x9f]")
_RE_DROP = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\xad\ue000-\uf8ff\ufffd]")
_RE_ATTRIBUTION = re.compile(r"^\s*(?:--|—|―|–)\s*\S")


def clean_file_text(text: str) -> str:
    """File-level cleanup before splitting: newlines, ANSI escapes, overstrike, mIRC codes."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _RE_ANSI.sub("", text)
    while "\x08" in text:
        new = _RE_OVERSTRIKE.sub("", text).replace("\n\x08", "\n")
        if new == text:
            text = text.replace("\x08", "")
            break
        text = new
    return _RE_MIRC.sub("", text)


def _fix_run(m: re.Match) -> str:
    run = m.group(0)
    for _ in range(3):   # double (and triple) encoding: "Ã¢Â\x80Â\x99" -> "â\x80\x99" -> "’"
        try:
            fixed = run.encode("latin-1").decode("utf-8")
        except UnicodeDecodeError:
            break
        if fixed == run:
            break
        run = fixed
        if not re.fullmatch(r"[\x80-\xff]{2,}", run):
            break
    return run


def _c1_as_cp1252(m: re.Match) -> str:
    return bytes([ord(m.group(0))]).decode("cp1252", errors="ignore")


def clean_entry(entry: str) -> str:
    """Entry-level cleanup: mojibake runs, C1 controls read as CP1252, other control / private-use characters."""
    if entry.isascii():
        return _RE_DROP.sub("", entry)
    entry = _RE_SOFT_HYPHEN_EOL.sub("", entry)
    entry = _RE_MOJIBAKE_RUN.sub(_fix_run, entry)
    entry = _RE_C1.sub(_c1_as_cp1252, entry)
    return _RE_DROP.sub("", entry)


def split_entries(text: str, delimiter: str = "%") -> list[str]:
    """Entries between lines holding only the delimiter (trailing whitespace allowed)."""
    entries, buf = [], []
    for line in text.split("\n"):
        if line.rstrip() == delimiter:
            entries.append("\n".join(buf))
            buf = []
        else:
            buf.append(line)
    entries.append("\n".join(buf))
    return entries


def strip_attribution(lines: list[str]) -> list[str]:
    """Drop a trailing attribution: the last line starting with '--' (or a dash) after which every line is
    indented, provided some text precedes it."""
    for i in range(len(lines) - 1, 0, -1):
        if _RE_ATTRIBUTION.match(lines[i]):
            if all(not ln.strip() or ln[:1].isspace() for ln in lines[i + 1:]):
                return lines[:i]
            return lines
        if lines[i].strip() and not lines[i][:1].isspace():
            return lines
    return lines


def normalise(entry: str, *, keep_attribution: bool = False, keep_newlines: bool = False) -> str:
    lines = entry.split("\n")
    if not keep_attribution:
        lines = strip_attribution(lines)
    if not keep_newlines:
        return " ".join(" ".join(lines).split())
    lines = [" ".join(ln.split()) for ln in lines]
    return "\n".join(ln for ln in lines if ln)


# ---- script ---------------------------------------------------------------------------------------------------------

_SCRIPT_RE = {
    "Latin": re.compile(r"[A-Za-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f\u1e00-\u1eff]"),
    "Cyrillic": re.compile(r"[\u0400-\u052f]"),
    "Han": re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f]"),
}


def _n_letters(text: str) -> int:
    return sum(map(str.isalpha, text))


def script_share(text: str, script: str) -> float:
    """Letters of `script` / all letters (0 when the text has no letters)."""
    n = _n_letters(text)
    if not n:
        return 0.0
    if script == "Latin" and text.isascii():
        return 1.0
    return len(_SCRIPT_RE[script].findall(text)) / n


def letter_share(text: str) -> float:
    """Letters / non-whitespace characters (0 for an empty text)."""
    n = len(text) - text.count(" ") - text.count("\n")
    return _n_letters(text) / n if n else 0.0


# ---- files of a language --------------------------------------------------------------------------------------------

def _spec(lang: str) -> LanguageSpec:
    if lang not in LANGUAGES:
        raise ValueError(f"unknown fortunes language {lang!r}; known: {sorted(LANGUAGES)}")
    return LANGUAGES[lang]


def _claimed_elsewhere(spec: LanguageSpec) -> set[str]:
    out = set(spec.exclude)
    for other in LANGUAGES.values():
        if other.lang != spec.lang:
            out.update(p for p in other.paths if p not in (".", "off"))
    return out


def _candidates(spec: LanguageSpec, root: Path) -> list[tuple[str, Path]]:
    """(relative path, path) of the regular files under the language's paths; symlinks (files or directories)
    and .dat index files are left out, and so are files another language claims."""
    found: dict[str, Path] = {}
    for rel in spec.paths:
        base = root if rel == "." else root / rel
        if base.is_symlink() and rel != ".":
            continue
        if rel == "." and base.is_dir():
            items = list(base.iterdir())
        elif base.is_dir():
            items = [Path(d) / f for d, _, fs in os.walk(base) for f in fs]   # os.walk does not follow links
        else:
            items = [base] if base.is_file() else []
        for p in items:
            if p.is_file() and not p.is_symlink() and not p.name.endswith(".dat"):
                found[p.relative_to(root).as_posix()] = p
    claimed = _claimed_elsewhere(spec) if "." in spec.paths else set(spec.exclude)
    return sorted((r, p) for r, p in found.items() if r not in claimed)


def _file_infos(spec: LanguageSpec, root: Path, dpkg_dir: Path, offensive: bool) -> list[tuple[FileInfo, Path]]:
    versions, owners = _dpkg_versions(str(dpkg_dir)), _dpkg_owners(str(dpkg_dir))
    out = []
    for rel, p in _candidates(spec, root):
        real = str(p.resolve())
        owner = owners.get(real, spec.package)
        info = dict(path=real, package=owner, version=versions.get(owner))
        dat = read_dat_header(p.with_name(p.name + ".dat"))
        rotated = bool(dat and dat[0] & STR_ROTATED)
        is_off = "off" in Path(rel).parts[:-1]
        if owner not in spec.packages:
            status = f"skipped: owned by {owner}"
        elif p.stat().st_size == 0:
            status = "skipped: empty file"
        elif is_off and not offensive:
            status = "skipped: offensive (off/), excluded"
        else:
            status = "used"
        out.append((FileInfo(status=status, rot13=rotated, offensive=is_off, **info), p))
    return out


def _missing(spec: LanguageSpec, root: Path) -> MissingFortunesError:
    where = ", ".join(str(root / p) for p in spec.paths if p != ".") or str(root)
    return MissingFortunesError(
        f"Debian package {' / '.join(spec.packages)} ({spec.name} fortunes)",
        spec.install_hint + " (or set the language aside: its rows say 'not run: missing data')",
        detail=f"no source files under {where}",
    )


def scan_language(
    lang: str,
    *,
    root: str | Path = FORTUNES_ROOT,
    dpkg_dir: str | Path = DPKG_DIR,
    min_chars: int = MIN_CHARS,
    max_chars: int | None = MAX_CHARS,
    script_share: float = SCRIPT_SHARE,
    letter_share: float = LETTER_SHARE,
    keep_attribution: bool = False,
    keep_newlines: bool = False,
    offensive: bool = False,
) -> LanguageData:
    """Every text of `lang` with its file records and drop counts; raises MissingFortunesError when the
    language's package is not installed (no usable source file)."""
    spec = _spec(lang)
    root = Path(root)
    infos = _file_infos(spec, root, Path(dpkg_dir), offensive)
    if not any(i.status == "used" for i, _ in infos):
        raise _missing(spec, root)
    texts: list[FortuneText] = []
    seen: set[str] = set()
    dropped: Counter = Counter()
    files: list[FileInfo] = []
    for info, p in infos:
        if info.status != "used":
            files.append(info)
            continue
        text, encoding = decode_file_bytes(p.read_bytes(), spec)
        if info.rot13:
            text = rot13(text)
        dat = read_dat_header(p.with_name(p.name + ".dat"))
        entries = split_entries(clean_file_text(text), dat[1] if dat and dat[1].strip() else "%")
        kept = 0
        for raw in entries:
            t = normalise(clean_entry(raw), keep_attribution=keep_attribution, keep_newlines=keep_newlines)
            reason = _drop_reason(t, spec, min_chars, max_chars, script_share, letter_share, seen)
            if reason:
                dropped[reason] += 1
                continue
            seen.add(t)
            texts.append(FortuneText(t, info.path, info.package, encoding))
            kept += 1
        n_entries = sum(1 for e in entries if e.strip())
        files.append(FileInfo(**{**info.__dict__, "encoding": encoding, "entries": n_entries, "kept": kept}))
    return LanguageData(lang, texts, files, dropped)


def _drop_reason(t, spec, min_chars, max_chars, min_script, min_letters, seen) -> str | None:
    if not t:
        return "empty"
    if len(t) < min_chars:
        return "too_short"
    if max_chars is not None and len(t) > max_chars:
        return "too_long"
    if letter_share(t) < min_letters:
        return "few_letters"
    if script_share(t, spec.script) < min_script:
        return "wrong_script"
    if t in seen:
        return "duplicate"
    return None


def read_language(lang: str, **kwargs) -> list[FortuneText]:
    """The texts of `lang` (see scan_language for the keyword arguments and what is dropped)."""
    return scan_language(lang, **kwargs).texts


def probe_language(lang: str, *, root: str | Path = FORTUNES_ROOT, dpkg_dir: str | Path = DPKG_DIR,
                   offensive: bool = False) -> LanguageStatus:
    """Whether `lang` can be read, without reading it and without raising for a missing package
    (an unknown language code still raises ValueError)."""
    spec = _spec(lang)
    infos = _file_infos(spec, Path(root), Path(dpkg_dir), offensive)
    n = sum(i.status == "used" for i, _ in infos)
    note = "" if n else (f"not run: missing data (Debian package {' / '.join(spec.packages)} not installed; "
                         f"apt-get install {spec.package})")
    return LanguageStatus(lang, bool(n), spec.packages, n, note)


def available_languages(*, root: str | Path = FORTUNES_ROOT, dpkg_dir: str | Path = DPKG_DIR) -> list[str]:
    """Language codes with at least one usable source file under `root`, in LANGUAGES order."""
    return [lang for lang in LANGUAGES if probe_language(lang, root=root, dpkg_dir=dpkg_dir).available]


def seeded_sample(texts: Sequence, n: int, seed: int, *, allow_fewer: bool = False) -> list:
    """n texts drawn without replacement by a seeded permutation: the same seed gives the same order, so the
    sample of n is a prefix of the sample of n + 1. Fewer than n texts raise unless allow_fewer (all, permuted)."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if n > len(texts) and not allow_fewer:
        raise ValueError(f"asked for {n} texts, only {len(texts)} available (allow_fewer=True takes them all)")
    order = np.random.default_rng(seed).permutation(len(texts))[: min(n, len(texts))]
    return [texts[i] for i in order]


# ---- CLI ------------------------------------------------------------------------------------------------------------

def summary_rows(langs: Sequence[str], **kwargs) -> list[dict]:
    rows = []
    for lang in langs:
        spec = _spec(lang)
        try:
            data = scan_language(lang, **kwargs)
        except MissingFortunesError:
            note = probe_language(lang, root=kwargs.get("root", FORTUNES_ROOT),
                                  dpkg_dir=kwargs.get("dpkg_dir", DPKG_DIR)).note
            rows.append(dict(lang=lang, packages=" ".join(spec.packages), files=0, texts=0, chars=0,
                             encodings="", skipped_files=0, note=note))
            continue
        pkgs = sorted({f"{f.package} {f.version or '?'}" for f in data.used_files})
        rows.append(dict(
            lang=lang, packages=", ".join(pkgs), files=len(data.used_files), texts=len(data.texts),
            chars=data.n_chars, encodings=" ".join(f"{e}:{n}" for e, n in sorted(data.encodings.items())),
            skipped_files=len(data.files) - len(data.used_files),
            note="; ".join(f"{k} {v}" for k, v in sorted(data.dropped.items())),
        ))
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--summary", action="store_true", help="print per language: files, texts, chars, encodings")
    ap.add_argument("--lang", nargs="*", default=None, help="languages (default: all known)")
    ap.add_argument("--root", default=str(FORTUNES_ROOT))
    ap.add_argument("--min-chars", type=int, default=MIN_CHARS)
    ap.add_argument("--max-chars", type=int, default=MAX_CHARS)
    ap.add_argument("--script-share", type=float, default=SCRIPT_SHARE)
    ap.add_argument("--letter-share", type=float, default=LETTER_SHARE)
    ap.add_argument("--keep-attribution", action="store_true")
    ap.add_argument("--offensive", action="store_true", help="include the rot13 off/ files (decoded)")
    args = ap.parse_args(argv)
    if not args.summary:
        ap.error("nothing to do: pass --summary")
    rows = summary_rows(args.lang or list(LANGUAGES), root=args.root, min_chars=args.min_chars,
                        max_chars=args.max_chars, script_share=args.script_share, letter_share=args.letter_share,
                        keep_attribution=args.keep_attribution, offensive=args.offensive)
    cols = ["lang", "files", "texts", "chars", "encodings", "skipped_files", "packages", "note"]
    out = [cols] + [[str(r[c]) for c in cols] for r in rows]
    widths = [max(len(r[i]) for r in out) for i in range(len(cols) - 1)]
    for r in out:
        sys.stdout.write("  ".join(v.ljust(w) for v, w in zip(r, widths)) + "  " + r[-1] + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
