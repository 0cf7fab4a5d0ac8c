"""make template-update: what it reads from the template's changelog and from the project's .cruft.json.

The update itself (cruft, the tests, the pull request) is tested end to end by the template's own tests.
"""

import json

import pytest

from {{ cookiecutter.package_name }}.core.errors import ProjectError
from {{ cookiecutter.package_name }}.ops.template_update import body, releases, state, version_of

CHANGELOG = """# Changelog

## [Unreleased]
- Not released yet. **Action:** nothing.

## [1.2.0] - 2027-01-10
### Changed
- `evaluate.latency_repeats` is now `evaluate.repeats`.
  **Action:** rename it in params.yaml, then run
  `make pipeline` once.
- A faster report.

### Added
- A new gate rule kind.

## [1.1.0] - 2026-12-20
- Nothing to do.
"""


def test_a_release_is_a_changelog_section_and_unreleased_is_none():
    """Newest first, each with its own text; the Unreleased section is not a release."""
    found = releases(CHANGELOG)
    assert [release.version for release in found] == ["1.2.0", "1.1.0"]
    assert found[0].text.startswith("## [1.2.0] - 2027-01-10") and "A new gate rule kind." in found[0].text
    assert "1.2.0" not in found[1].text


def test_an_entry_that_needs_an_action_says_what_on_one_line():
    """The text after **Action:**, its wrapped lines joined; entries without one ask nothing."""
    first, second = releases(CHANGELOG)
    assert first.actions == ["rename it in params.yaml, then run `make pipeline` once."]
    assert second.actions == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read the template's record (FileNotFoundError)"),
        ("{not json", "cannot read the template's record (JSONDecodeError)"),
        (json.dumps({"template": "https://example.com/t.git"}), "names no template and commit"),
        (json.dumps([1, 2]), "names no template and commit"),
    ],
)
def test_a_project_without_a_readable_record_is_told_how_to_link_it(tmp_path, content, message):
    """A missing or malformed .cruft.json is one line naming the file and the way out."""
    if content is not None:
        (tmp_path / ".cruft.json").write_text(content)
    with pytest.raises(ProjectError) as raised:
        state(tmp_path)
    assert str(raised.value).startswith(".cruft.json: ") and message in str(raised.value)
    assert "Keeping your project up to date" in str(raised.value)


def test_the_release_a_project_records_or_its_commit_before_releases():
    """`_template_version` from the answers; a project from before releases is named by its commit."""
    recorded = {"template": "t", "commit": "0123456789abcdef"}
    assert version_of({**recorded, "context": {"cookiecutter": {"_template_version": "1.1.0"}}}) == "1.1.0"
    assert version_of({**recorded, "context": {}}) == "commit 0123456789"


def test_the_request_says_what_to_do_what_changed_and_where_it_conflicts():
    """Actions first, then the changelog, the files, and the conflicts and tests a reviewer must see."""
    text = body("1.1.0", "1.2.0", releases(CHANGELOG)[:1], [("M", "Makefile")], ["Makefile"], "not run")
    assert text.startswith("Template update 1.1.0 -> 1.2.0.")
    assert "- Tests: not run" in text and "- Conflicts: Makefile" in text
    assert text.index("## Action needed") < text.index("## Template changelog") < text.index("## Files changed (1)")
    assert "### [1.2.0] - 2027-01-10" in text and "- `M` Makefile" in text
