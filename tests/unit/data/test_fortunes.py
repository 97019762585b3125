"""The fortunes reader on synthetic files that reproduce each package's quirks, and on the installed packages."""
from __future__ import annotations

import codecs
import os
import struct

import pytest

from experiments.data import fortunes as F

RU_1 = "Привет, как дела? Это простой текст на русском языке, очень простой."
RU_2 = "Лучше поздно, чем никогда: так говорят люди, которые всегда опаздывают."
ZH_SIMPLIFIED = "我们的生活是美好的，你说这个人不在家，他们都来了。"
ZH_TRADITIONAL = "我們的生活是美好的，你說這個人不在家，他們都來了。"
CS = "Příliš žluťoučký kůň úpěl ďábelské ódy, řekl šťastný člověk."
SK = "Kto nie je milovaný, je vždy i uprostred davu sám, ľudia hovoria."
PL = "Zażółć gęślą jaźń, powiedział ktoś bardzo mądry o świętej łące."
DE = "Größe ist nicht alles, sagte der Bär zur Ölsardine im Übungsraum."


def fortune_file(*entries: str, sep: str = "%") -> str:
    return ("\n" + sep + "\n").join(entries) + "\n" + sep + "\n"


def write(path, data: bytes | str, encoding: str = "utf-8"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode(encoding))
    return path


def dat(path, *, rotated: bool = False, delim: str = "%"):
    """A strfile index next to `path` (header only: the reader needs no offsets)."""
    flags = F.STR_ROTATED if rotated else 0
    return write(path.with_name(path.name + ".dat"),
                 struct.pack(">5I", 2, 1, 100, 10, flags) + delim.encode() + b"\0\0\0" + b"\xff" * 8)


@pytest.fixture
def nodpkg(tmp_path):
    return tmp_path / "no-dpkg"


def read(lang, root, nodpkg, **kw):
    return F.scan_language(lang, root=root, dpkg_dir=nodpkg, **kw)


# ---- encodings ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("lang,text,encoding", [
    ("ru", RU_1, "koi8_r"),
    ("ru", RU_1, "cp1251"),
    ("ru", RU_1, "cp866"),
    ("bg", "Нищо не струва онзи, който не е полезен на никого, казват хората.", "cp1251"),
    ("bg", "Нищо не струва онзи, който не е полезен на никого, казват хората.", "koi8_r"),
    ("zh", ZH_SIMPLIFIED, "gb2312"),
    ("zh", ZH_TRADITIONAL, "big5"),
    ("cs", CS, "iso8859_2"),
    ("cs", CS, "cp1250"),
    ("sk", SK, "iso8859_2"),
    ("pl", PL, "iso8859_2"),
    ("pl", PL, "cp1250"),
    ("de", DE, "cp1252"),
    ("eo", "Ĉiu ŝafo ĝojas, kiam la ĥoro kantas pri ĵaŭdo kaj ŭ.", "iso8859_3"),
    ("es", "¿Dónde está el niño pequeño? ¡Allí, en la montaña!", "cp1252"),
])
def test_legacy_encoding_is_detected_and_decoded(lang, text, encoding):
    spec = F.LANGUAGES[lang]
    data = fortune_file(text, text[::-1]).encode(encoding)
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    decoded, found = F.decode_file_bytes(data, spec)
    assert decoded.startswith(text)
    assert found == codecs.lookup(encoding).name or (encoding == "gb2312" and found == "gb2312")


def test_utf8_wins_and_bom_is_dropped():
    text, enc = F.decode_file_bytes(("\ufeff" + RU_1).encode(), F.LANGUAGES["ru"])
    assert (text, enc) == (RU_1, "utf-8")


def test_undecodable_file_falls_back_to_replacement():
    spec = F.LanguageSpec("xx", "X", "fortunes-xx", ("xx",), "Latin", ("ascii",))
    text, enc = F.decode_file_bytes(b"abc \xff\xfe def", spec)
    assert enc == "utf-8 (with replacements)" and "abc" in text


def test_files_in_legacy_encodings_are_read_per_file(tmp_path, nodpkg):
    root = tmp_path / "fortunes"
    write(root / "ru" / "koi", fortune_file(RU_1), "koi8_r")
    write(root / "ru" / "win", fortune_file(RU_2), "cp1251")
    write(root / "ru" / "utf", fortune_file("Третий текст: самый обычный, в кодировке UTF-8, без сюрпризов."))
    data = read("ru", root, nodpkg)
    assert [t.text for t in data.texts] == [RU_1, "Третий текст: самый обычный, в кодировке UTF-8, без сюрпризов.",
                                            RU_2]
    assert {os.path.basename(f.path): f.encoding for f in data.files} == {"koi": "koi8-r", "utf": "utf-8",
                                                                          "win": "cp1251"}
    assert data.encodings == {"koi8-r": 1, "utf-8": 1, "cp1251": 1}
    assert {t.encoding for t in data.texts} == {"koi8-r", "cp1251", "utf-8"}


def test_chinese_gb_and_big5_files(tmp_path, nodpkg):
    root = tmp_path / "fortunes"
    write(root / "chinese", fortune_file(ZH_SIMPLIFIED), "gb2312")
    write(root / "tang300", fortune_file(ZH_TRADITIONAL), "big5")
    data = read("zh", root, nodpkg, min_chars=5)
    assert [t.text for t in data.texts] == [ZH_SIMPLIFIED, ZH_TRADITIONAL]
    assert data.encodings == {"gb2312": 1, "big5": 1}


# ---- separators, cleaning, attribution ----------------------------------------------------------------------------

def test_percent_separators_with_trailing_spaces_crlf_and_empty_entries(tmp_path, nodpkg):
    raw = ("First fortune, long enough to be kept.\r\n%  \r\n\r\n%\t\r\n"
           "Second fortune\r\n  spans two lines.\r\n%\r\n%\r\n"
           "50% of a line with a percent sign stays one entry.\r\n% \r\n")
    root = tmp_path / "fortunes"
    write(root / "cookie", raw)
    data = read("en", root, nodpkg)
    assert [t.text for t in data.texts] == [
        "First fortune, long enough to be kept.",
        "Second fortune spans two lines.",
        "50% of a line with a percent sign stays one entry.",
    ]
    assert data.dropped["empty"] == 3
    assert data.files[0].entries == 3


def test_delimiter_comes_from_the_dat_header(tmp_path, nodpkg):
    root = tmp_path / "fortunes"
    f = write(root / "cookie", "One entry with a percent % inside it.\n#\nAnother entry after a hash line.\n#\n")
    dat(f, delim="#")
    assert [t.text for t in read("en", root, nodpkg).texts] == ["One entry with a percent % inside it.",
                                                               "Another entry after a hash line."]


def test_attribution_is_stripped_by_default_and_kept_on_request(tmp_path, nodpkg):
    entries = [
        "Be yourself; everyone else is already taken.\n\t\t-- Oscar Wilde",
        "Two-line attribution follows this sentence.\n\t\t-- Mark Twain,\n\t\t\"Pudd'nhead Wilson's Calendar\"",
        "Sem espaço depois dos traços, também é atribuição.\n--Neném Prancha, filósofo",
        "- A dialogue line is not an attribution.\n- Neither is the reply to it.",
        "A dash -- inside a line stays, and so does the rest.",
    ]
    root = tmp_path / "fortunes"
    write(root / "brasil", fortune_file(*entries))
    texts = [t.text for t in read("pt-BR", root, nodpkg).texts]
    assert texts == [
        "Be yourself; everyone else is already taken.",
        "Two-line attribution follows this sentence.",
        "Sem espaço depois dos traços, também é atribuição.",
        "- A dialogue line is not an attribution. - Neither is the reply to it.",
        "A dash -- inside a line stays, and so does the rest.",
    ]
    kept = [t.text for t in read("pt-BR", root, nodpkg, keep_attribution=True).texts]
    assert kept[0] == "Be yourself; everyone else is already taken. -- Oscar Wilde"
    lines = read("pt-BR", root, nodpkg, keep_newlines=True).texts[3].text
    assert lines == "- A dialogue line is not an attribution.\n- Neither is the reply to it."


def test_overstrike_ansi_mirc_mojibake_and_controls_are_cleaned(tmp_path, nodpkg):
    entries = [
        "This is " + "".join("_\b" + c for c in "underlined") + " and b\bbo\bol\bld\bd text.",  # overstrike
        "\x1b[33mColoured \x1b[32mtext\x1b[m from a terminal escape sequence.",                 # ANSI
        "<nick> \x02bold\x02 and \x0304,12coloured\x03 IRC text, then \x0freset.\a",           # mIRC, BEL
        "Here\u00c3\u00a2\u00c2\u0080\u00c2\u0099s the thing: it doesn\u00e2\u0080\u0099t \u00e2\u0088\u0097.",
        "Schafft er\x92s wohl, ist\x92s gut, und ein trans\xad\n   formiertes Wort.",            # C1, soft hyphen
    ]
    root = tmp_path / "fortunes"
    write(root / "de" / "misc", fortune_file(*entries))
    texts = [t.text for t in read("de", root, nodpkg, script_share=0.0).texts]
    assert texts == [
        "This is underlined and bold text.",
        "Coloured text from a terminal escape sequence.",
        "<nick> bold and coloured IRC text, then reset.",
        "Here’s the thing: it doesn’t ∗.",
        "Schafft er’s wohl, ist’s gut, und ein transformiertes Wort.",
    ]


def test_real_latin1_letters_are_not_mistaken_for_mojibake():
    german = "Günstig wär es, schön und süß: Ärger über Öl."
    assert F.clean_entry(german) == german
    assert F.clean_entry("© 2024, 25°, ±3 µm") == "© 2024, 25°, ±3 µm"


# ---- files: .dat, symlinks, empty, rot13/offensive, ownership ----------------------------------------------------

def test_dat_files_symlinks_and_empty_files_are_skipped(tmp_path, nodpkg):
    root = tmp_path / "fortunes"
    f = write(root / "cookie", fortune_file("A cookie fortune that is long enough."))
    dat(f)
    (root / "cookie.u8").symlink_to("cookie")
    write(root / "it" / "adams", fortune_file("Il senso della vita, dell'universo e di tutto quanto."))
    (root / "adams").symlink_to("it/adams")               # fortunes-it links its files into the top level
    write(root / "pl" / "bajki", fortune_file(PL))
    write(root / "pl" / "bajki.u8", b"")                   # fortunes-pl: empty regular .u8 files
    write(root / "cs" / "citace", fortune_file(CS))
    (root / "cz").symlink_to("cs")                         # fortunes-cs: cz/ -> cs/
    en = read("en", root, nodpkg)
    assert [os.path.basename(i.path) for i in en.files] == ["cookie"]
    assert len(en.texts) == 1 and en.texts[0].source_file == str(f.resolve())
    pl = read("pl", root, nodpkg)
    assert [(os.path.basename(i.path), i.status) for i in pl.files] == [("bajki", "used"),
                                                                        ("bajki.u8", "skipped: empty file")]
    assert len(read("cs", root, nodpkg).texts) == 1


def test_slovak_file_belongs_to_sk_not_cs(tmp_path, nodpkg):
    root = tmp_path / "fortunes"
    write(root / "cs" / "citace", fortune_file(CS))
    write(root / "cs" / "klasik-sk", fortune_file(SK))
    assert [t.text for t in read("cs", root, nodpkg).texts] == [CS]
    assert [t.text for t in read("sk", root, nodpkg).texts] == [SK]


def test_top_level_files_of_other_languages_are_not_english(tmp_path, nodpkg):
    root = tmp_path / "fortunes"
    write(root / "cookie", fortune_file("An English fortune that is long enough."))
    write(root / "brasil", fortune_file("Uma sorte brasileira, comprida o bastante."))
    write(root / "chinese", fortune_file(ZH_SIMPLIFIED))
    assert [os.path.basename(i.path) for i in read("en", root, nodpkg).files] == ["cookie"]


def test_rot13_off_files_are_excluded_by_default_and_decoded_when_included(tmp_path, nodpkg):
    plain = ["Why did the chicken cross the road? To get away from this joke.", "Dónde está el pingüino? Aquí."]
    root = tmp_path / "fortunes"
    write(root / "cookie", fortune_file("A harmless fortune that is long enough."))
    off = write(root / "off" / "jokes", fortune_file(*(F.rot13(t) for t in plain)))
    dat(off, rotated=True)
    default = read("en", root, nodpkg)
    assert [t.text for t in default.texts] == ["A harmless fortune that is long enough."]
    (info,) = [i for i in default.files if i.offensive]
    assert info.status == "skipped: offensive (off/), excluded" and info.rot13
    included = read("en", root, nodpkg, offensive=True, script_share=0.5)
    assert [t.text for t in included.texts][1:] == plain        # accented letters are not rotated
    (info,) = [i for i in included.files if i.offensive]
    assert info.status == "used" and info.rot13 and info.kept == 2


def test_rotated_flag_outside_off_is_decoded_and_included(tmp_path, nodpkg):
    root = tmp_path / "fortunes"
    f = write(root / "es" / "cifrado.fortunes", fortune_file(F.rot13("Un texto cifrado con rot trece, largo.")))
    dat(f, rotated=True)
    data = read("es", root, nodpkg)
    assert [t.text for t in data.texts] == ["Un texto cifrado con rot trece, largo."]
    assert data.files[0].rot13 and not data.files[0].offensive


def test_package_and_version_come_from_dpkg(tmp_path):
    root = tmp_path / "fortunes"
    mine = write(root / "ru" / "love", fortune_file(RU_1))
    theirs = write(root / "ru" / "alien", fortune_file(RU_2))
    dpkg = tmp_path / "dpkg"
    write(dpkg / "status", "Package: fortunes-ru\nStatus: install ok installed\nVersion: 1.52-3.1\n\n"
                           "Package: fortunes-other\nStatus: install ok installed\nVersion: 9\n\n"
                           "Package: fortunes-gone\nStatus: deinstall ok config-files\nVersion: 1\n")
    write(dpkg / "info" / "fortunes-ru.list", f"/.\n{mine.parent}\n{mine}\n")
    write(dpkg / "info" / "fortunes-other.list", f"{theirs}\n")
    data = F.scan_language("ru", root=root, dpkg_dir=dpkg)
    by_name = {os.path.basename(i.path): i for i in data.files}
    assert (by_name["love"].package, by_name["love"].version, by_name["love"].status) == (
        "fortunes-ru", "1.52-3.1", "used")
    assert by_name["alien"].status == "skipped: owned by fortunes-other"
    assert [(t.text, t.package) for t in data.texts] == [(RU_1, "fortunes-ru")]
    assert F._dpkg_versions(str(dpkg)).get("fortunes-gone") is None


# ---- filters ------------------------------------------------------------------------------------------------------

def test_duplicates_across_files_are_dropped_first_occurrence_kept(tmp_path, nodpkg):
    root = tmp_path / "fortunes"
    write(root / "de" / "a", fortune_file(DE, "Ein anderer Spruch, lang genug für den Filter."))
    write(root / "de" / "b", fortune_file("  " + DE.replace(" ", "  \t") + "  \n\t\t-- Jemand", DE))
    data = read("de", root, nodpkg)
    assert [t.text for t in data.texts] == [DE, "Ein anderer Spruch, lang genug für den Filter."]
    assert data.texts[0].source_file.endswith("/de/a")
    assert data.dropped["duplicate"] == 2
    assert [f.kept for f in data.files] == [2, 0]


def test_script_filter_on_mixed_script_texts(tmp_path, nodpkg):
    english = "This line is English only and should not count as Russian."
    mostly_russian = "Временные трудности, которые у нас бывают почти всегда и почти везде, to be continued..."
    half = "Ложь бывает одного вида, and the other half of this line is English."
    root = tmp_path / "fortunes"
    write(root / "ru" / "mixed", fortune_file(RU_1, english, mostly_russian, half))
    assert F.script_share(mostly_russian, "Cyrillic") == pytest.approx(57 / 70)
    assert F.script_share(half, "Cyrillic") == pytest.approx(20 / 54)
    assert [t.text for t in read("ru", root, nodpkg).texts] == [RU_1, mostly_russian]
    data = read("ru", root, nodpkg, script_share=0.35)
    assert [t.text for t in data.texts] == [RU_1, mostly_russian, half]
    assert read("ru", root, nodpkg).dropped["wrong_script"] == 2
    assert F.script_share(ZH_SIMPLIFIED, "Han") == 1.0
    assert F.script_share("Debian 项目是一个由个人组成的团体", "Han") == pytest.approx(13 / 19)
    assert F.script_share("12345 !!!", "Latin") == 0.0


def test_letter_share_drops_ascii_art(tmp_path, nodpkg):
    art = "  /\\_/\\  \n ( o.o ) \n  > ^ <  \n /|   |\\ \n(_|   |_)"
    root = tmp_path / "fortunes"
    write(root / "ascii-art", fortune_file(art, "A fortune with words in it, long enough."))
    data = read("en", root, nodpkg)
    assert [t.text for t in data.texts] == ["A fortune with words in it, long enough."]
    assert data.dropped["few_letters"] == 1


def test_min_and_max_chars(tmp_path, nodpkg):
    texts = ["Short one.", "A medium length fortune text here.", "L" + "o" * 200 + "ng."]
    root = tmp_path / "fortunes"
    write(root / "cookie", fortune_file(*texts))
    got = [t.text for t in read("en", root, nodpkg, min_chars=11, max_chars=100).texts]
    assert got == [texts[1]]
    assert [t.text for t in read("en", root, nodpkg, min_chars=1, max_chars=None).texts] == texts
    assert read("en", root, nodpkg, min_chars=11, max_chars=100).dropped == {"too_short": 1, "too_long": 1,
                                                                              "empty": 1}  # after the last %


# ---- missing data, sampling, CLI ------------------------------------------------------------------------------

def test_missing_language_raises_naming_the_package(tmp_path, nodpkg):
    root = tmp_path / "fortunes"
    write(root / "cookie", fortune_file("An English fortune that is long enough."))
    with pytest.raises(F.MissingFortunesError, match=r"fortunes-bg.*apt-get install fortunes-bg") as err:
        F.read_language("bg", root=root, dpkg_dir=nodpkg)
    assert isinstance(err.value, F.MissingArtifactError)
    status = F.probe_language("bg", root=root, dpkg_dir=nodpkg)
    assert not status.available and status.n_files == 0
    assert status.note.startswith("not run: missing data") and "apt-get install fortunes-bg" in status.note
    assert F.probe_language("en", root=root, dpkg_dir=nodpkg) == F.LanguageStatus("en", True, (
        "fortunes", "fortunes-min"), 1, "")
    assert F.available_languages(root=root, dpkg_dir=nodpkg) == ["en"]
    with pytest.raises(F.MissingFortunesError, match="fortunes-zh"):
        F.read_language("zh", root=tmp_path / "nowhere", dpkg_dir=nodpkg)


def test_only_offensive_files_count_as_missing(tmp_path, nodpkg):
    root = tmp_path / "fortunes"
    write(root / "es" / "off" / "varios.fortunes", fortune_file("Un chiste ofensivo, pero largo de verdad."))
    with pytest.raises(F.MissingFortunesError):
        F.read_language("es", root=root, dpkg_dir=nodpkg)
    assert len(F.read_language("es", root=root, dpkg_dir=nodpkg, offensive=True)) == 1


def test_unknown_language_is_a_value_error(tmp_path):
    with pytest.raises(ValueError, match="unknown fortunes language 'xx'"):
        F.probe_language("xx", root=tmp_path)


def test_seeded_sample():
    items = list(range(50))
    a = F.seeded_sample(items, 10, seed=3)
    assert a == F.seeded_sample(items, 10, seed=3) and len(set(a)) == 10
    assert F.seeded_sample(items, 20, seed=3)[:10] == a
    assert F.seeded_sample(items, 10, seed=4) != a
    assert sorted(F.seeded_sample(items, 50, seed=0)) == items
    with pytest.raises(ValueError, match="only 50 available"):
        F.seeded_sample(items, 51, seed=0)
    assert sorted(F.seeded_sample(items, 60, seed=0, allow_fewer=True)) == items


def test_summary_cli(tmp_path, capsys):
    root = tmp_path / "fortunes"
    write(root / "ru" / "koi", fortune_file(RU_1, RU_2), "koi8_r")
    assert F.main(["--summary", "--root", str(root), "--lang", "ru", "bg"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:6] == ["lang", "files", "texts", "chars", "encodings", "skipped_files"]
    ru = out[1].split()
    assert ru[:5] == ["ru", "1", "2", str(len(RU_1) + len(RU_2)), "koi8-r:1"]
    assert out[2].startswith("bg ") and "not run: missing data" in out[2]


# ---- the installed packages ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("lang", list(F.LANGUAGES))
def test_installed_package_yields_at_least_100_texts(lang):
    status = F.probe_language(lang)
    if not status.available:
        pytest.skip(status.note)
    data = F.scan_language(lang)
    assert len(data.texts) >= 100, (lang, len(data.texts), data.dropped)
    spec = F.LANGUAGES[lang]
    assert all(f.package in spec.packages for f in data.used_files)
    assert all(f.version for f in data.used_files)             # dpkg knows every used file's package
    assert len({t.text for t in data.texts}) == len(data.texts)
    assert all(F.script_share(t.text, spec.script) >= F.SCRIPT_SHARE for t in data.texts)
    assert not any(0x80 <= ord(c) <= 0x9f or c in "\x1b\x08\x03" for t in data.texts for c in t.text)
