"""worker.inputs: article files, folders and JSON-lines streams."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from worker.inputs import (
    INGESTIBLE_SUFFIXES,
    InputError,
    is_ingestible,
    iter_jsonl,
    iter_payloads,
    read_article_file,
)


def test_read_txt_with_title(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_text("\nA short title\n\nBody line one.\nBody line two.\n", encoding="utf-8")
    assert read_article_file(path) == [
        {"title": "A short title", "body": "Body line one.\nBody line two."}
    ]


@pytest.mark.parametrize(
    "content",
    [
        "First line is not followed by a blank line.\nSecond line.\n",
        "x" * 200 + "\n\nBody.\n",
        "Only one line\n",
    ],
)
def test_read_txt_without_title(tmp_path: Path, content: str) -> None:
    path = tmp_path / "a.txt"
    path.write_text(content, encoding="utf-8")
    assert read_article_file(path) == [{"body": content}]


def test_read_html(tmp_path: Path) -> None:
    path = tmp_path / "a.HTM"
    html = "<html><head><title> Tea &amp; trade </title></head><body><p>x</p></body></html>"
    path.write_text(html, encoding="utf-8")
    assert read_article_file(path) == [{"body": html, "title": "Tea & trade"}]


def test_read_json_object_and_list(tmp_path: Path) -> None:
    one = tmp_path / "one.json"
    one.write_text('{"body": "a"}', encoding="utf-8")
    many = tmp_path / "many.json"
    many.write_text('[{"body": "a"}, {"text": "b", "id": 2}]', encoding="utf-8")
    assert read_article_file(one) == [{"body": "a"}]
    assert read_article_file(many) == [{"body": "a"}, {"text": "b", "id": 2}]


def test_read_jsonl_skips_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text('{"body": "a"}\n\n   \n{"body": "b"}\n', encoding="utf-8")
    assert read_article_file(path) == [{"body": "a"}, {"body": "b"}]


@pytest.mark.parametrize(
    ("name", "content", "where"),
    [
        ("bad.json", '[\n{"body": "a"},\n{"body": }\n]', "bad.json:3"),
        ("bad.jsonl", '{"body": "a"}\n\n{oops}\n', "bad.jsonl:3"),
        ("list.jsonl", '{"body": "a"}\n[1]\n', "list.jsonl:2"),
        ("items.json", '[{"body": "a"}, 3]', "item 2"),
        ("scalar.json", '"just a string"', "scalar.json"),
        ("notes.md", "# hi", "notes.md"),
        ("noext", "hi", "noext"),
    ],
)
def test_read_errors_name_the_file(tmp_path: Path, name: str, content: str, where: str) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=r"\S") as caught:
        read_article_file(path)
    assert where in str(caught.value)


def test_read_non_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin.txt"
    path.write_bytes(b"Caf\xe9 news\n")
    with pytest.raises(ValueError, match=r"latin\.txt"):
        read_article_file(path)


def test_read_errors_are_input_errors(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"body": "a"}\n{oops}\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"bad\.jsonl:2: not JSON"):
        read_article_file(path)


def test_iter_jsonl_numbers_lines_and_skips_blank_ones() -> None:
    lines = io.StringIO('{"a": 1}\n\n  \n[2]\n"three"\n')
    assert list(iter_jsonl(lines, "x")) == [(1, {"a": 1}), (4, [2]), (5, "three")]
    with pytest.raises(InputError, match=r"^x:2: not JSON"):
        list(iter_jsonl(["{}", "{"], "x"))


@pytest.mark.parametrize("suffix", INGESTIBLE_SUFFIXES)
def test_every_ingestible_suffix_in_any_case(suffix: str) -> None:
    assert is_ingestible(Path(f"a{suffix}"))
    assert is_ingestible(Path(f"a{suffix.upper()}"))


def test_not_ingestible() -> None:
    assert not is_ingestible(Path("notes.md"))
    assert not is_ingestible(Path("noext"))


def test_iter_payloads_reads_folders_in_order_and_a_jsonl_file(tmp_path: Path) -> None:
    folder = tmp_path / "drop"
    (folder / "sub").mkdir(parents=True)
    (folder / "b.txt").write_text("B body", encoding="utf-8")
    (folder / "sub" / "a.json").write_text('{"body": "A"}', encoding="utf-8")
    (folder / "skip.md").write_text("# not an article", encoding="utf-8")
    stream = tmp_path / "more.jsonl"
    stream.write_text('{"body": "C"}\n7\n', encoding="utf-8")
    payloads = list(iter_payloads([folder], str(stream)))
    assert payloads == [{"body": "B body"}, {"body": "A"}, {"body": "C"}, 7]


def test_iter_payloads_names_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file or folder"):
        list(iter_payloads([tmp_path / "absent"], None))
    with pytest.raises(InputError, match="no such file"):
        list(iter_payloads([], str(tmp_path / "absent.jsonl")))
