"""Static checks: one broken workflow per kind of mistake, each located at line:column."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.unit

VALID_HEAD = """
name: wf
inputs:
  image: image
  text: {type: string, default: hello}
  k: {type: integer, default: 3, minimum: 1, maximum: 10}
"""


def test_unknown_top_level_key(issues_for, find_issue):
    issues = issues_for(
        """
        name: wf
        stpes: {}
        steps:
          a: {uses: echo, with: {text: hi}}
        outputs: {t: "${a.text}"}
        """
    )
    issue = find_issue(issues, 2, 1)
    assert "unknown key 'stpes' at the top level" in issue.message
    assert issue.hint is not None and "did you mean 'steps'?" in issue.hint


def test_unknown_step_key_still_checks_the_rest_of_the_step(issues_for, find_issue):
    issues = issues_for(
        """
        name: wf
        steps:
          a:
            uses: echo
            wiht: {}
            with: {text: "${nope.text}"}
        outputs: {t: "${a.text}"}
        """
    )
    issue = find_issue(issues, 5, 5)
    assert "unknown key 'wiht' in step 'a'" in issue.message
    assert "did you mean 'with'?" in str(issue.hint)
    assert "unknown step 'nope'" in find_issue(issues, 6, 19).message


def test_unknown_step_plugin_lists_known_ones(issues_for, find_issue):
    issues = issues_for(
        """
        name: wf
        steps:
          a:
            uses: ecoh
            with: {text: hi}
        outputs: {t: "${a.text}"}
        """
    )
    issue = find_issue(issues, 4, 11)
    assert "unknown step plugin 'ecoh'" in issue.message
    assert "did you mean 'echo'?" in str(issue.hint)
    assert "add, boom, caption, count, echo, gate, join, search" in str(issue.hint)


def test_unknown_input_type_suggests_the_closest(issues_for, find_issue):
    issues = issues_for(
        """
        name: wf
        inputs:
          n: {type: integr}
        steps:
          a: {uses: echo, with: {text: hi}}
        outputs: {t: "${a.text}"}
        """
    )
    issue = find_issue(issues, 3, 13)
    assert "input 'n': type 'integr' is not valid" in issue.message
    assert "did you mean 'integer'?" in str(issue.hint)


def test_reference_to_missing_input_lists_inputs(issues_for, find_issue):
    issues = issues_for(
        VALID_HEAD
        + """
        steps:
          a: {uses: echo, with: {text: "${inputs.txt}"}}
        outputs: {t: "${a.text}"}
        """.replace("        ", "")
    )
    issue = find_issue(issues, 8, 33)
    assert "${inputs.txt} refers to an unknown input 'txt'" in issue.message
    assert "did you mean 'text'?" in str(issue.hint)
    assert "image, k, text" in str(issue.hint)


def test_reference_to_missing_step(issues_for, find_issue):
    issues = issues_for(
        """
        name: wf
        inputs: {text: string}
        steps:
          a:
            uses: echo
            with:
              text: ${text.value}
        outputs: {t: "${a.text}"}
        """
    )
    issue = find_issue(issues, 7, 13)
    assert "${text.value} refers to an unknown step 'text'" in issue.message
    assert issue.hint == "to use the workflow input, write ${inputs.text}"


def test_reference_to_missing_output_field(issues_for, find_issue):
    issues = issues_for(
        """
        name: wf
        steps:
          a: {uses: echo, with: {text: hi}}
          b:
            uses: echo
            with:
              text: "before ${a.txt} after"
        outputs: {t: "${b.text}"}
        """
    )
    issue = find_issue(issues, 7, 21)
    assert "${a.txt}: step 'a' (echo) has no output 'txt'" in issue.message
    assert "did you mean 'text'?" in str(issue.hint)


def test_nested_field_and_list_navigation(issues_for, find_issue):
    issues = issues_for(
        """
        name: wf
        steps:
          s: {uses: search, with: {query: q}}
          a: {uses: echo, with: {text: "${s.matches[0].txet}"}}
          b: {uses: echo, with: {text: "${s.matches.text}"}}
          c: {uses: echo, with: {text: "${s.best[0]}"}}
          ok: {uses: echo, with: {text: "${s.matches[1].text} ${s.best.text}"}}
        outputs: {t: "${ok.text}"}
        """
    )
    first = find_issue(issues, 4, 33)
    assert "${s.matches[0]} has no field 'txet'" in first.message
    assert "did you mean 'text'?" in str(first.hint)
    assert "pick an item first, e.g. [0].text" in find_issue(issues, 5, 33).message
    assert "${s.best} is Match, not a list" in find_issue(issues, 6, 33).message
    assert len(issues) == 3


def test_type_mismatch_between_output_and_input(issues_for, find_issue):
    issues = issues_for(
        """
        name: wf
        steps:
          s: {uses: search, with: {query: q}}
          j:
            uses: join
            with:
              parts: ${s.matches[0].text}
              sep: ${s.matches[0].score}
        outputs: {t: "${j.text}"}
        """
    )
    parts = find_issue(issues, 7, 14)
    assert "input 'parts' expects list[str], but ${s.matches[0].text} is str" in parts.message
    assert "wrap it in a list, `[${s.matches[0].text}]`" in str(parts.hint)
    sep = find_issue(issues, 8, 12)
    assert "input 'sep' expects str, but ${s.matches[0].score} is float" in sep.message


def test_workflow_input_type_mismatch_and_bool_is_not_a_number(issues_for, find_issue):
    issues = issues_for(
        """
        name: wf
        inputs:
          flag: {type: boolean, default: false}
          image: image
        steps:
          a: {uses: add, with: {a: "${inputs.flag}"}}
          c: {uses: caption, with: {image: "${inputs.image}", prompt: "${inputs.image}"}}
        outputs: {t: "${a.total}"}
        """
    )
    assert "expects float, but ${inputs.flag} is bool" in find_issue(issues, 6, 29).message
    issue = find_issue(issues, 7, 64)
    assert "input 'prompt' expects str | None, but ${inputs.image} is image" in issue.message


def test_image_cannot_be_embedded_in_text(issues_for, find_issue):
    issues = issues_for(
        """
        name: wf
        inputs: {image: image}
        steps:
          a: {uses: echo, with: {text: "look: ${inputs.image}"}}
        outputs: {t: "${a.text}"}
        """
    )
    assert "is an image and cannot be embedded in text" in find_issue(issues, 4, 39).message


def test_interpolated_string_is_a_string(issues_for, find_issue):
    issues = issues_for(
        """
        name: wf
        inputs: {k: integer}
        steps:
          a: {uses: count, with: {text: hi, top_k: "top ${inputs.k}"}}
        outputs: {t: "${a.count}"}
        """
    )
    issue = find_issue(issues, 4, 44)
    assert "input 'top_k' expects int, but text with embedded references is a string" in (
        issue.message
    )


def test_literal_values_are_validated_at_their_node(issues_for, find_issue):
    issues = issues_for(
        """
        name: wf
        steps:
          a:
            uses: count
            with:
              text: hi
              top_k: five
          b: {uses: count, with: {text: hi, top_k: 0}}
          c: {uses: add, with: {a: true}}
          d: {uses: join, with: {parts: [x, y], mode: loud}}
          e: {uses: caption, with: {image: cat.jpg}}
        outputs: {t: "${a.count}"}
        """
    )
    assert "input 'top_k': Input should be a valid integer" in find_issue(issues, 7, 14).message
    assert "(got 'five')" in find_issue(issues, 7, 14).message
    assert "greater than or equal to 1 (got 0)" in find_issue(issues, 8, 44).message
    assert "input 'a' expects float, got the boolean True" in find_issue(issues, 9, 28).message
    assert "Input should be 'plain' or 'upper'" in find_issue(issues, 10, 47).message
    image = find_issue(issues, 11, 36)
    assert "not base64" in image.message
    assert "${inputs.image}" in str(image.hint)


def test_missing_required_and_unknown_step_inputs(issues_for, find_issue):
    issues = issues_for(
        """
        name: wf
        steps:
          a:
            uses: count
            with:
              txt: hi
        outputs: {t: "${a.count}"}
        """
    )
    missing = find_issue(issues, 3, 3)
    assert "step 'a' (count) is missing its required input 'text'" in missing.message
    unknown = find_issue(issues, 6, 7)
    assert "step 'a' (count) has no input 'txt'" in unknown.message
    assert "did you mean 'text'?" in str(unknown.hint)


def test_input_defaults_are_checked(issues_for, find_issue):
    issues = issues_for(
        """
        name: wf
        inputs:
          k: {type: integer, default: 0, minimum: 1}
          n: {type: number, default: abc}
          tags: {type: array, items: string, default: [a, 1]}
          mode: {type: string, enum: [a, b], default: c}
          img: {type: image, default: x}
          s: {type: string, minimum: 1}
        steps:
          a: {uses: echo, with: {text: hi}}
        outputs: {t: "${a.text}"}
        """
    )
    assert "default 0 is invalid: 0 is below the minimum 1" in find_issue(issues, 3, 31).message
    assert "default 'abc' is invalid: expected a number" in find_issue(issues, 4, 30).message
    assert "expected a string, got int 1" in find_issue(issues, 5, 47).message
    assert "not one of the allowed values" in find_issue(issues, 6, 47).message
    assert "an image input cannot have a default" in find_issue(issues, 7, 31).message
    assert "'minimum' applies only to integer and number" in find_issue(issues, 8, 30).message


def test_cycle_names_its_path(issues_for, find_issue):
    issues = issues_for(
        """
        name: wf
        steps:
          a: {uses: echo, with: {text: "${c.text}"}}
          b: {uses: echo, with: {text: "${a.text}"}}
          c: {uses: echo, with: {text: "${b.text}"}}
          self: {uses: echo, with: {text: "${self.text}"}}
        outputs: {t: "${c.text}"}
        """
    )
    assert "steps form a cycle: a -> c -> b -> a" in find_issue(issues, 3, 3).message
    assert "steps form a cycle: self -> self" in find_issue(issues, 6, 3).message
    assert len(issues) == 2


def test_outputs_must_reference_something_valid(issues_for, find_issue):
    issues = issues_for(
        """
        name: wf
        steps:
          a: {uses: echo, with: {text: hi}}
        outputs:
          constant: 3
          missing: ${a.nothing}
          broken: ${a.text
        """
    )
    assert "output 'constant' references nothing" in find_issue(issues, 5, 13).message
    assert "has no output 'nothing'" in find_issue(issues, 6, 12).message
    assert "unclosed reference" in find_issue(issues, 7, 11).message


def test_malformed_reference(issues_for, find_issue):
    issues = issues_for(
        """
        name: wf
        steps:
          a: {uses: echo, with: {text: "x ${a b}"}}
          b: {uses: echo, with: {text: "${inputs}"}}
        outputs: {t: "${a.text}"}
        """
    )
    assert "malformed reference '${a b}'" in find_issue(issues, 3, 35).message
    assert "incomplete reference '${inputs}'" in find_issue(issues, 4, 33).message


def test_invalid_names(issues_for, find_issue):
    issues = issues_for(
        """
        name: my workflow
        inputs: {bad-name: string}
        steps:
          inputs: {uses: echo, with: {text: hi}}
        outputs: {t: "${inputs.bad-name}"}
        """
    )
    assert "invalid workflow name 'my workflow'" in find_issue(issues, 1, 7).message
    assert "invalid input name 'bad-name'" in find_issue(issues, 2, 10).message
    assert "invalid step id 'inputs'" in find_issue(issues, 4, 3).message


def test_missing_required_top_level_keys(issues_for, find_issue):
    issues = issues_for("description: nothing here\n")
    messages = [i.message for i in issues]
    assert "the workflow is missing the required key 'name'" in messages
    assert "the workflow is missing the required key 'steps'" in messages
    assert find_issue(issues, 1, 1).hint is not None


def test_every_issue_of_a_file_is_collected(issues_for):
    issues = issues_for(
        """
        name: wf
        inputs: {k: {type: integer, default: x}}
        steps:
          a: {uses: nope, with: {text: "${b.text}"}}
          b: {uses: echo, with: {text: 1}}
        outputs: {t: "${a.zzz}"}
        """
    )
    lines = [i.location.line for i in issues]
    assert lines == sorted(lines)
    assert len(issues) == 3  # bad default, unknown plugin, int for str; a.zzz is untyped


def test_unknown_key_in_an_input_declaration(issues_for, find_issue):
    issues = issues_for(
        """
        name: wf
        inputs:
          k: {type: integer, defualt: 3}
        steps:
          a: {uses: echo, with: {text: hi}}
        outputs: {t: "${a.text}"}
        """
    )
    issue = find_issue(issues, 3, 22)
    assert "unknown key 'defualt' in input 'k'" in issue.message
    assert "did you mean 'default'?" in str(issue.hint)


def test_open_ended_step_inputs_accept_any_key(write, test_registry):
    from pydantic import BaseModel, ConfigDict

    from mmserve.workflow import load_workflow

    class Loose:
        class Inputs(BaseModel):
            model_config = ConfigDict(extra="allow")
            text: str

        class Outputs(BaseModel):
            text: str

        async def run(self, inputs: Any, ctx: Any) -> Any:
            return self.Outputs(text=inputs.text)

    test_registry.register("step", "loose", Loose)
    path = write(
        """
        name: wf
        steps:
          a: {uses: loose, with: {text: hi, anything: [1, 2]}}
        outputs: {t: "${a.text}"}
        """
    )
    assert load_workflow(path, registry=test_registry).spec.steps["a"].with_["anything"] == [1, 2]
