"""Loading valid workflows, folders of them, and the JSON Schemas they publish."""

from __future__ import annotations

import pytest

from mmserve.errors import WorkflowValidationError
from mmserve.workflow import load_workflow, load_workflow_text, load_workflows, validate_paths

pytestmark = pytest.mark.unit

CAPTION_THEN_SEARCH = """
name: caption_then_search
description: Caption an image, then search for the caption.
inputs:
  image: {type: image, description: The picture.}
  top_k: {type: integer, default: 2, minimum: 1, maximum: 100}
  tags: {type: array, items: {type: string}, default: [], max_length: 5}
  mode: {type: string, enum: [plain, upper], default: plain}
  note: {type: string, default: null}
steps:
  caption:
    uses: caption
    description: describe the picture
    timeout_s: 30
    with:
      image: ${inputs.image}
      prompt: ${inputs.note}
  search:
    uses: search
    with:
      query: "a photo of ${caption.text}"
      n: ${inputs.top_k}
  joined:
    uses: join
    with:
      parts: ["${search.matches[0].text}", "${search.best.text}", "$${literal}"]
      mode: ${inputs.mode}
  total:
    uses: add
    with: {a: "${inputs.top_k}", b: "${search.matches[0].score}"}
outputs:
  caption: ${caption.text}
  matches: ${search.matches}
  first: ${search.matches[0]}
  joined: ${joined.text}
  total: ${total.total}
  summary: "${caption.text} (${total.total})"
  bundle: {text: "${joined.text}", sizes: "${joined.sizes}"}
  vector: ${caption.vector}
"""


def test_valid_workflow_loads(write, test_registry):
    path = write(CAPTION_THEN_SEARCH)
    workflow = load_workflow(path, registry=test_registry)
    assert workflow.name == "caption_then_search"
    assert workflow.description == "Caption an image, then search for the caption."
    assert workflow.source == path
    assert list(workflow.spec.steps) == ["caption", "search", "joined", "total"]
    assert workflow.spec.steps["caption"].timeout_s == 30
    assert workflow.dependencies == {
        "caption": frozenset(),
        "search": {"caption"},
        "joined": {"search"},
        "total": {"search"},
    }
    assert workflow.order.index("caption") < workflow.order.index("search")


def test_input_schema(test_registry):
    workflow = load_workflow_text(CAPTION_THEN_SEARCH, registry=test_registry)
    schema = workflow.input_schema()
    assert schema["required"] == ["image"]
    assert schema["additionalProperties"] is False
    props = schema["properties"]
    assert props["image"] == {
        "type": "string",
        "contentEncoding": "base64",
        "contentMediaType": "image/*",
        "description": "The picture.",
    }
    assert props["top_k"] == {"type": "integer", "default": 2, "minimum": 1, "maximum": 100}
    assert props["tags"] == {
        "type": "array",
        "items": {"type": "string"},
        "default": [],
        "maxItems": 5,
    }
    assert props["mode"] == {"type": "string", "default": "plain", "enum": ["plain", "upper"]}
    assert props["note"] == {"type": "string", "default": None}


def test_output_schema_follows_step_output_types(test_registry):
    workflow = load_workflow_text(CAPTION_THEN_SEARCH, registry=test_registry)
    schema = workflow.output_schema()
    props = schema["properties"]
    assert props["caption"]["type"] == "string"
    assert props["matches"]["type"] == "array"
    assert props["matches"]["items"] == {"$ref": "#/$defs/Match"}
    assert props["first"] == {"$ref": "#/$defs/Match"}
    assert schema["$defs"]["Match"]["properties"]["score"]["type"] == "number"
    assert props["total"]["type"] == "number"
    assert props["summary"]["type"] == "string"
    assert "type" not in props["bundle"]  # a mapping of references is untyped
    assert "type" not in props["vector"]  # an `Any` field
    assert set(schema["required"]) == set(workflow.spec.outputs)


def test_short_input_form_and_yaml_keys_like_on(test_registry):
    workflow = load_workflow_text(
        "name: w\ninputs: {on: string}\nsteps:\n  a: {uses: echo, with: {text: '${inputs.on}'}}\n"
        "outputs: {t: '${a.text}'}\n",
        registry=test_registry,
    )
    assert workflow.spec.inputs["on"].type == "string"
    assert workflow.spec.inputs["on"].required


def test_load_workflows_reads_folders_and_refuses_duplicate_names(write, test_registry, tmp_path):
    write(
        "name: one\nsteps: {a: {uses: echo, with: {text: x}}}\noutputs: {t: '${a.text}'}\n",
        "flows/one.yaml",
    )
    write(
        "name: two\nsteps: {a: {uses: echo, with: {text: x}}}\noutputs: {t: '${a.text}'}\n",
        "flows/two.yml",
    )
    write("not a workflow", "flows/readme.txt")
    loaded = load_workflows([tmp_path / "flows"], registry=test_registry)
    assert sorted(loaded) == ["one", "two"]

    dup = write(
        "# again\nname: one\nsteps: {a: {uses: echo, with: {text: x}}}\n"
        "outputs: {t: '${a.text}'}\n",
        "more/dup.yaml",
    )
    with pytest.raises(WorkflowValidationError) as info:
        load_workflows([tmp_path / "flows", dup], registry=test_registry)
    (issue,) = info.value.issues
    assert (issue.location.file, issue.location.line, issue.location.column) == (str(dup), 2, 7)
    assert "duplicate workflow name 'one', already defined in" in issue.message
    assert str(tmp_path / "flows" / "one.yaml") in issue.message


def test_validate_paths_collects_issues_of_all_files_and_never_raises(
    write, test_registry, tmp_path
):
    good = write(
        "name: g\nsteps: {a: {uses: echo, with: {text: x}}}\noutputs: {t: '${a.text}'}\n", "g.yaml"
    )
    bad1 = write("name: b1\nsteps: {a: {uses: nope}}\n", "b1.yaml")
    bad2 = write("name: b2\nsteps: [\n", "b2.yaml")
    (tmp_path / "latin1.yaml").write_bytes(b"name: caf\xe9\n")
    issues = validate_paths(
        [good, bad1, bad2, tmp_path / "latin1.yaml", tmp_path / "missing.yaml"],
        registry=test_registry,
    )
    by_file = {i.location.file: i for i in issues}
    assert set(by_file) == {
        str(bad1),
        str(bad2),
        str(tmp_path / "latin1.yaml"),
        str(tmp_path / "missing.yaml"),
    }
    assert "unknown step plugin 'nope'" in by_file[str(bad1)].message
    assert "YAML syntax error" in by_file[str(bad2)].message
    assert "not UTF-8" in by_file[str(tmp_path / "latin1.yaml")].message
    assert by_file[str(tmp_path / "missing.yaml")].message == "no such file"
    assert validate_paths([good], registry=test_registry) == []


def test_validation_error_lists_every_issue_one_per_line(write, test_registry):
    path = write("name: w\nsteps:\n  a: {uses: nope}\n  b: {uses: echo}\n")
    with pytest.raises(WorkflowValidationError) as info:
        load_workflow(path, registry=test_registry)
    lines = str(info.value).splitlines()
    assert lines[0].startswith(f"{path}:3:13: step 'a' uses an unknown step plugin 'nope'")
    assert lines[1].startswith(f"{path}:4:3: step 'b' (echo) is missing its required input 'text'")
    assert info.value.code == "workflow_invalid"
