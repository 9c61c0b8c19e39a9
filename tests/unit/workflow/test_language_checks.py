"""Static checks of the language keys: each mistake refused before anything runs, at its
line:column, with a hint."""

from __future__ import annotations

import pytest

from mmserve.errors import WorkflowValidationError
from mmserve.workflow import load_workflows, validate_paths

pytestmark = pytest.mark.unit


def test_for_each_over_something_that_is_not_a_list(issues_for, find_issue):
    issues = issues_for(
        """
        name: wf
        steps:
          s: {uses: search, with: {query: cats}}
          e:
            uses: echo
            for_each: ${s.best}
            with: {text: "${item.text}"}
        outputs: {t: "${e[*].text}"}
        """
    )
    issue = find_issue(issues, 6, 15)
    assert "for_each needs a list, but ${s.best} is Match | None" in issue.message
    assert "${search.matches}" in (issue.hint or "")
    assert len(issues) == 1


def test_as_shadowing_a_step_name(issues_for, find_issue):
    issues = issues_for(
        """
        name: wf
        steps:
          s: {uses: search, with: {query: cats}}
          e:
            uses: echo
            for_each: ${s.matches}
            as: s
            with: {text: "${s.text}"}
        outputs: {t: "${e[*].text}"}
        """
    )
    issue = find_issue(issues, 7, 9)
    assert "the for_each item name 's' shadows the step 's'" in issue.message
    assert "as: match" in (issue.hint or "")


def test_as_without_for_each(issues_for, find_issue):
    issues = issues_for(
        """
        name: wf
        steps:
          e: {uses: echo, as: x, with: {text: hi}}
        outputs: {t: "${e.text}"}
        """
    )
    assert "`as` names the item of a for_each" in find_issue(issues, 3, 19).message


def test_item_fields_are_type_checked(issues_for, find_issue):
    issues = issues_for(
        """
        name: wf
        steps:
          s: {uses: search, with: {query: cats}}
          e:
            uses: echo
            for_each: ${s.matches}
            as: match
            with: {text: "${match.txt}"}
        outputs: {t: "${e[*].text}"}
        """
    )
    issue = find_issue(issues, 8, 19)
    assert "${match.txt}: ${match} has no field 'txt'" in issue.message
    assert "did you mean 'text'?" in (issue.hint or "")


def test_for_each_step_field_without_star_or_index(issues_for, find_issue):
    issues = issues_for(
        """
        name: wf
        steps:
          s: {uses: search, with: {query: cats}}
          e: {uses: echo, for_each: "${s.matches}", with: {text: "${item.text}"}}
          j: {uses: echo, with: {text: "${e.text}"}}
        outputs:
          t: ${e.text}
          ok: ${e[*].text}
          first: ${e[0].text}
        """
    )
    issue = find_issue(issues, 5, 33)
    assert "step 'e' runs for_each, so its result is a list" in issue.message
    assert issue.hint == (
        "write ${e[*].text} for the list of every item's value, or ${e[0].text} for one item"
    )
    assert "runs for_each" in find_issue(issues, 7, 6).message
    assert len(issues) == 2


def test_star_list_fits_a_list_input_and_not_a_string(issues_for, find_issue):
    issues = issues_for(
        """
        name: wf
        steps:
          s: {uses: search, with: {query: cats}}
          e: {uses: echo, for_each: "${s.matches}", with: {text: "${item.text}"}}
          j: {uses: join, with: {parts: "${e[*].text}"}}
          k: {uses: echo, with: {text: "${s.matches[*].text}"}}
        outputs: {t: "${j.text}", k: "${k.text}"}
        """
    )
    issue = find_issue(issues, 6, 33)
    assert "expects str, but ${s.matches[*].text} is list[str]" in issue.message
    assert len(issues) == 1


def test_when_comparing_a_string_with_a_number(issues_for, find_issue):
    issues = issues_for(
        """
        name: wf
        steps:
          s: {uses: search, with: {query: cats}}
          e:
            uses: echo
            when: ${s.matches[0].text} > 0.5
            with: {text: hi}
        outputs: {t: "${e.text}"}
        """
    )
    issue = find_issue(issues, 6, 11)
    assert "when compares ${s.matches[0].text} (a string) with 0.5 (a number)" in issue.message
    assert "quote text" in (issue.hint or "")


def test_when_naming_a_missing_field(issues_for, find_issue):
    issues = issues_for(
        """
        name: wf
        steps:
          s: {uses: search, with: {query: cats}}
          e:
            uses: echo
            when: ${s.best.scor} >= 0.5
            with: {text: hi}
        outputs: {t: "${e.text}"}
        """
    )
    issue = find_issue(issues, 6, 11)
    assert "has no field 'scor'" in issue.message
    assert "did you mean 'score'?" in (issue.hint or "")


def test_when_on_a_non_boolean_and_bad_syntax(issues_for, find_issue):
    issues = issues_for(
        """
        name: wf
        steps:
          s: {uses: search, with: {query: cats}}
          e: {uses: echo, when: "${s.best.score}", with: {text: hi}}
          f: {uses: echo, when: "${s.best.score} >= 0.5 and", with: {text: hi}}
          g: {uses: echo, when: "${s.best.text} == cat", with: {text: hi}}
        outputs: {e: "${e.text}", f: "${f.text}", g: "${g.text}"}
        """
    )
    assert "${s.best.score} is float, not a boolean" in find_issue(issues, 4, 26).message
    assert "the condition ends too early" in find_issue(issues, 5, 26).message
    bad_word = find_issue(issues, 6, 44)
    assert "unexpected 'cat'" in bad_word.message and "'text'" in bad_word.message


def test_when_dependencies_order_the_steps(issues_for, find_issue):
    issues = issues_for(
        """
        name: wf
        steps:
          a: {uses: echo, when: "${b.text} == 'x'", with: {text: hi}}
          b: {uses: echo, when: "${a.text} == 'x'", with: {text: hi}}
        outputs: {t: "${a.text}"}
        """
    )
    assert "steps form a cycle: a -> b -> a" in find_issue(issues, 3, 3).message


def test_cache_on_a_step_that_is_not_deterministic(issues_for, find_issue):
    issues = issues_for(
        """
        name: wf
        steps:
          e:
            uses: echo
            cache: true
            with: {text: hi}
        outputs: {t: "${e.text}"}
        """
    )
    issue = find_issue(issues, 5, 12)
    assert "step 'e' (echo) is not deterministic" in issue.message
    assert "deterministic" in (issue.hint or "")


def test_retry_shape(issues_for, find_issue):
    issues = issues_for(
        """
        name: wf
        steps:
          e:
            uses: echo
            retry: {attempts: 0, backof_s: 1}
            with: {text: hi}
        outputs: {t: "${e.text}"}
        """
    )
    messages = " | ".join(i.message for i in issues)
    assert "retry.attempts" in messages and "unknown key 'backof_s'" in messages


def test_sub_workflow_cycle_across_files_is_reported_at_each_uses(write, tmp_path, test_registry):
    first = write(
        """
        name: first
        steps:
          go: {uses: "workflow:second", with: {}}
        outputs: {t: "${go.t}"}
        """,
        "first.yaml",
    )
    second = write(
        """
        name: second
        steps:
          back:
            uses: workflow:first
        outputs: {t: "${back.t}"}
        """,
        "second.yaml",
    )
    write(
        """
        name: fine
        steps:
          e: {uses: echo, with: {text: hi}}
        outputs: {t: "${e.text}"}
        """,
        "fine.yaml",
    )
    issues = validate_paths([tmp_path], registry=test_registry)
    located = {(i.location.file, i.location.line, i.location.column) for i in issues}
    assert located == {(str(first), 3, 14), (str(second), 4, 11)}
    assert all(
        "workflows use each other in a cycle: first -> second -> first" in i.message for i in issues
    )


def test_unknown_sub_workflow_and_its_typed_inputs_and_outputs(write, tmp_path, test_registry):
    write(
        """
        name: inner
        inputs:
          text: {type: string}
        steps:
          e: {uses: echo, with: {text: "${inputs.text}"}}
        outputs: {loud: "${e.text}"}
        """,
        "inner.yaml",
    )
    outer = write(
        """
        name: outer
        steps:
          a: {uses: "workflow:inner", with: {text: 3}}
          b: {uses: "workflow:inner", with: {text: hi}}
          c: {uses: "workflow:iner", with: {text: hi}}
        outputs: {t: "${b.quiet}"}
        """,
        "outer.yaml",
    )
    with pytest.raises(WorkflowValidationError) as info:
        load_workflows([tmp_path], registry=test_registry)
    issues = {(i.location.line, i.location.column): i for i in info.value.issues}
    assert all(i.location.file == str(outer) for i in info.value.issues)
    assert "input 'text'" in issues[(3, 44)].message
    assert "unknown workflow 'iner'" in issues[(5, 13)].message
    assert "did you mean 'inner'?" in (issues[(5, 13)].hint or "")
    assert "has no output 'quiet'" in issues[(6, 15)].message


def test_a_sub_workflow_with_problems_is_named_as_such(write, tmp_path, test_registry):
    write(
        """
        name: inner
        steps:
          e: {uses: nope, with: {}}
        outputs: {t: "${e.text}"}
        """,
        "inner.yaml",
    )
    outer = write(
        """
        name: outer
        steps:
          a: {uses: "workflow:inner"}
        outputs: {t: "${a.t}"}
        """,
        "outer.yaml",
    )
    issues = validate_paths([tmp_path], registry=test_registry)
    mine = [i for i in issues if i.location.file == str(outer)]
    assert [(i.location.line, i.location.column) for i in mine] == [(3, 13)]
    assert "uses the workflow 'inner', which has problems" in mine[0].message
