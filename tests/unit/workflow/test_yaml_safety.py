"""The YAML reader: syntax errors located, hostile documents refused with clear messages."""

from __future__ import annotations

import pytest

from mmserve.workflow.language.yaml_source import YamlLimits, read_yaml

pytestmark = pytest.mark.unit


def test_syntax_error_points_at_the_problem(issues_for, find_issue):
    issues = issues_for(
        """
        name: wf
        steps:
          a: {uses: echo, with: {text: hi}
        outputs: {}
        """
    )
    assert len(issues) == 1
    issue = find_issue(issues, 4, 1)
    assert issue.message.startswith("YAML syntax error:")
    assert "expected ',' or '}'" in issue.message
    assert issue.hint is not None


def test_unquoted_reference_in_a_flow_mapping_gets_a_hint_to_quote_it(issues_for):
    issues = issues_for(
        """
        name: wf
        inputs: {text: {type: string}}
        steps:
          a: {uses: echo, with: {text: ${inputs.text}}}
        outputs: {t: "${a.text}"}
        """
    )
    assert len(issues) == 1
    assert issues[0].message.startswith("YAML syntax error:")
    assert "'${inputs.image}'" in (issues[0].hint or "")
    assert "block style" in (issues[0].hint or "")


def test_bad_indentation_is_a_syntax_error(issues_for):
    issues = issues_for("name: wf\nsteps:\n  a:\n    uses: echo\n   with: {}\n")
    assert issues[0].location.line == 5
    assert "YAML syntax error" in issues[0].message


def test_custom_tags_are_refused(issues_for, find_issue):
    issues = issues_for(
        """
        name: !!python/object/apply:os.system ["echo pwned"]
        steps:
          a: {uses: echo, with: {text: !custom hi}}
        outputs: {t: "${a.text}"}
        """
    )
    first = find_issue(issues, 1, 7)
    assert "YAML tag 'tag:yaml.org,2002:python/object/apply:os.system' is not allowed" in (
        first.message
    )
    assert "remove the tag" in str(first.hint)
    assert "YAML tag '!custom' is not allowed" in find_issue(issues, 3, 32).message


def test_alias_bomb_is_refused(issues_for):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for level in range(1, 9):
        refs = ", ".join([f"*a{level - 1}"] * 10)
        lines.append(f"a{level}: &a{level} [{refs}]")
    issues = issues_for("\n".join(lines) + "\n")
    assert len(issues) == 1
    assert "expands to more than 20000 values" in issues[0].message
    assert "aliases" in str(issues[0].hint)


def test_recursive_alias_is_refused_as_too_deep():
    doc = read_yaml("a: &x [*x]\n", file="f.yaml")
    assert [i.message for i in doc.issues] == ["the document is nested deeper than 32 levels"]


def test_deep_nesting_is_refused():
    doc = read_yaml("a: " + "[" * 40 + "]" * 40 + "\n", file="f.yaml")
    assert "nested deeper than 32 levels" in doc.issues[0].message


def test_extremely_deep_nesting_does_not_crash():
    doc = read_yaml("[" * 50_000 + "]" * 50_000, file="f.yaml")
    assert len(doc.issues) == 1
    assert "nested deeper" in doc.issues[0].message


def test_oversized_file_is_refused(write, test_registry, find_issue):
    from mmserve.workflow import validate_paths

    path = write("name: wf\n" + "# padding\n" * 120_000)
    issues = validate_paths([path], registry=test_registry)
    issue = find_issue(issues, 1, 1)
    assert "over the limit of 1048576" in issue.message


def test_size_limit_applies_to_text_too():
    doc = read_yaml("a: 1\n" * 100, file="f.yaml", limits=YamlLimits(max_bytes=100))
    assert "500 bytes, over the limit of 100" in doc.issues[0].message


def test_duplicate_keys_are_refused(issues_for, find_issue):
    issues = issues_for(
        """
        name: wf
        steps:
          a: {uses: echo, with: {text: hi}}
          a: {uses: echo, with: {text: ho}}
        outputs: {t: "${a.text}"}
        """
    )
    issue = find_issue(issues, 4, 3)
    assert "duplicate key 'a' (first defined at line 3)" in issue.message


def test_merge_keys_and_multiple_documents_are_refused(issues_for):
    merge = issues_for("base: &b {uses: echo}\nsteps:\n  a: {<<: *b}\n")
    assert "merge keys (<<) are not supported" in merge[0].message
    assert (merge[0].location.line, merge[0].location.column) == (3, 7)
    multi = issues_for("name: a\n---\nname: b\n")
    assert "a workflow file holds one document" in str(multi[0].hint)


def test_empty_file_and_non_mapping_top_level(issues_for):
    assert issues_for("")[0].message == "the file is empty"
    top = issues_for("- just\n- a list\n")
    assert top[0].message == "the top level of a workflow file must be a mapping"


def test_keys_stay_the_text_written_and_dates_stay_strings():
    doc = read_yaml("on: 2024-01-02\nyes: [1, 1.5, true, null, '3']\n", file="f.yaml")
    assert doc.value == {"on": "2024-01-02", "yes": [1, 1.5, True, None, "3"]}
    assert doc.location(("yes", 2)).column == 15
    assert doc.location(("yes",), key=True).line == 2
