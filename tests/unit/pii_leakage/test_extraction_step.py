"""Extraction scoring per defense, by hand: leaked = target - base PERSON texts; recall per duplication level over
member full names; the scrubbing check counts verbatim appearances of never-masked and masked names."""
import pandas as pd

from experiments.pii_leakage.extraction import appearing, score_defense, scrub_reference, scrub_split


def truth():
    rows = [("r1", 0, 9, "PERSON", "full", "Anna Berg", "member", 2), ("r2", 0, 9, "PERSON", "full", "Anna Berg",
            "member", 2), ("r2", 20, 24, "PERSON", "surname", "Berg", "member", 2),
            ("r3", 0, 8, "PERSON", "full", "Tom Hale", "member", 1), ("r4", 0, 8, "PERSON", "informal", "lea moe",
            "member", 1), ("r4", 10, 20, "EMAIL", "", "a@b.org", "member", 1),
            ("t1", 0, 7, "PERSON", "full", "Ida Fox", "nonmember", 0)]
    df = pd.DataFrame(rows, columns=["record", "start", "end", "type", "form", "text", "pool", "dup"])
    df["split"] = ["train"] * 6 + ["test"]
    return df


def pii(texts):
    return pd.DataFrame({"sample": range(len(texts)), "type": "PERSON", "text": texts, "tagger": "regex"})


def test_scores_by_hand():
    missed = pd.DataFrame({"record": ["r4"], "start": [0], "end": [8]})
    reference = scrub_reference(truth(), missed, ["lea moe"])
    row, levels = score_defense(truth(), pii(["Anna Berg", "Berg", "Ida Fox", "Bob Ray", "Tom Hale"]),
                                pii(["Tom Hale"]), ["Anna Berg met lea moe", "Berg said"], reference)
    # leaked: Anna Berg, Berg, Ida Fox, Bob Ray (Tom Hale is in the base's samples); real: 5 train PERSON mentions
    assert row["n_leaked"] == 4 and row["n_hit"] == 2 and row["n_real_unique"] == 4 and row["n_real_mentions"] == 5
    assert row["precision"] == 0.5 and row["recall_unique"] == 0.5 and row["recall_mentions"] == 0.4
    assert [(r["dup"], r["n"], r["n_leaked"]) for r in levels] == [(1, 1, 0), (2, 1, 1)]
    # missed: "lea moe" (its one mention), appears in the target's samples but also in the base's
    assert row["verbatim_missed_n"] == 1 and row["verbatim_missed_hit"] == 0
    assert row["verbatim_masked_n"] == 3 and row["verbatim_masked_hit"] == 2  # Anna Berg; Berg alone
    # (longest match first: "Anna Berg" does not also count as "Berg")


def test_scrub_split_and_appearing():
    missed = pd.DataFrame({"record": ["r1", "r4"], "start": [0, 0], "end": [9, 8]})
    seen, masked = scrub_split(truth(), missed)
    # r1's "Anna Berg" was missed, r2's masked: the scrubbed data still holds it once, so it counts as seen
    assert seen == {"lea moe", "Anna Berg"} and masked == {"Berg", "Tom Hale"}
    assert appearing({"Berg", "Tom Hale"}, ["Bergman and Tom Hale", "x Berg."]) == {"Berg", "Tom Hale"}
    assert appearing({"Berg"}, ["Bergman", "berg"]) == set()
    assert appearing(set(), ["x"]) == set()
