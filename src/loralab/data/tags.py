"""Word-level tag schemes: normalise IOB1 / IOBES tags to BIO (IOB2) and reject anything else."""

from __future__ import annotations

from loralab.errors import DataError


def to_bio(tags: list[str], *, file: str, row: int, column: str = "tags") -> list[str]:
    """Return `tags` as BIO: every entity starts with B-.

    IOB1 (CoNLL-2003 original: I-X opens an entity unless it touches another X) becomes IOB2:
    an I-X that does not follow B-X or I-X becomes B-X. IOBES is accepted too (S-X -> B-X,
    E-X -> I-X). A tag that is not O and not PREFIX-TYPE is a DataError.
    """
    out: list[str] = []
    prev = "O"
    for tag in tags:
        if tag == "O":
            out.append(tag)
            prev = tag
            continue
        prefix, sep, kind = tag.partition("-")
        if not sep or not kind or prefix not in ("B", "I", "E", "S"):
            raise DataError(f"tag {tag!r} is not BIO: expected O, B-TYPE or I-TYPE",
                            file=file, row=row, column=column)
        if prefix in ("I", "E") and prev in (f"B-{kind}", f"I-{kind}"):
            new = f"I-{kind}"
        else:
            new = f"B-{kind}"
        out.append(new)
        prev = new
    return out
