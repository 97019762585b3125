"""EOT-separated document files: what documents_text writes, iter_documents reads back (multi-line documents
included); a file without the trailing separator reads the same."""
from experiments.lm.tokenizer import EOT, documents_text, iter_documents

DOCS = ["one line", "two\nlines", "Tom said: \"hi\".\nThe end."]


def test_round_trip(tmp_path):
    path = tmp_path / "d.txt"
    path.write_text(documents_text(DOCS), encoding="utf-8")
    assert path.read_text(encoding="utf-8").count(f"\n{EOT}\n") == len(DOCS)
    assert list(iter_documents(path)) == DOCS


def test_without_trailing_separator(tmp_path):
    path = tmp_path / "d.txt"
    path.write_text(f"\n{EOT}\n".join(DOCS) + "\n", encoding="utf-8")
    assert list(iter_documents(path)) == DOCS


def test_other_separator(tmp_path):
    path = tmp_path / "d.txt"
    path.write_text(documents_text(DOCS, separator="%"), encoding="utf-8")
    assert list(iter_documents(path, separator="%")) == DOCS
    assert list(iter_documents(path)) == ["\n%\n".join(DOCS) + "\n%"]
