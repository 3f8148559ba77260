"""The README stays short and every relative link of the README and of docs/ resolves: a file
that exists and, for a #fragment, a heading or an explicit anchor of that page."""

import re
from pathlib import Path

import pytest

TIER = "unit"

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
README_WORDS = 3000

LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
INLINE_CODE = re.compile(r"`[^`\n]*`")


def prose(text: str) -> str:
    """The page without its code blocks and inline code (links there are examples)."""
    return INLINE_CODE.sub("", FENCE.sub("", text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"<[^>]+>", "", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text())
    found = {slug(h) for h in re.findall(r"^#{1,6} (.+?)\s*#*$", text, re.M)}
    return found | set(re.findall(r"""<a (?:id|name)=["']([^"']+)["']""", text))


def links(page: Path) -> list[str]:
    return [target for target in LINK.findall(prose(page.read_text()))
            if not re.match(r"^[a-z]+:", target)]  # fmt: skip


def test_the_readme_is_at_most_3000_words():
    words = len((ROOT / "README.md").read_text().split())
    assert words <= README_WORDS, f"README.md has {words} words; move long material to docs/"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_resolves(page):
    broken = []
    for target in links(page):
        path, _, fragment = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(f"{target}: no such file")
        elif fragment and file.suffix == ".md" and fragment not in anchors(file):
            broken.append(f"{target}: no heading or anchor #{fragment} in {file.name}")
    assert not broken, f"{page.name}: " + "; ".join(broken)


def test_the_checker_sees_a_broken_link_and_a_missing_anchor(tmp_path):
    page = tmp_path / "page.md"
    (tmp_path / "other.md").write_text("# Other page\n\n## Its part (two)\n")
    page.write_text(
        "# Title\n\n[ok](other.md#its-part-two) [self](#title) ![img](nope.png)\n"
        "[bad anchor](other.md#missing) `[code](nowhere.md)`\n\n"
        "```\n[in a block](nowhere.md)\n```\n[web](https://example.org)\n"
    )
    assert links(page) == ["other.md#its-part-two", "#title", "nope.png", "other.md#missing"]
    assert anchors(tmp_path / "other.md") == {"other-page", "its-part-two"}
    assert "missing" not in anchors(tmp_path / "other.md")
    assert slug("The answers, measured") == "the-answers-measured"
    assert slug("FAQ sweeps: `grubench run`") == "faq-sweeps-grubench-run"
