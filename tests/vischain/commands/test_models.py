import json

from typer.testing import CliRunner

from vischain.cli import app

runner = CliRunner()


def test_chat_prints_a_schema_valid_reply(tiny_models, images, tmp_path):
    schema = {"type": "object", "required": ["verdict"], "additionalProperties": False,
              "properties": {"verdict": {"enum": ["yes", "no"]}}}
    (tmp_path / "s.json").write_text(json.dumps(schema))
    result = runner.invoke(app, ["chat", "Is it red?", "--model", "tiny:qwen2-vl", "--image", images[0],
                                 "--schema", str(tmp_path / "s.json")])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.splitlines()[0])["verdict"] in ("yes", "no")


def test_bad_inputs_are_one_line_errors_with_exit_2(tiny_models, tmp_path):
    (tmp_path / "bad.json").write_text('{"type": "banana"}')
    (tmp_path / "notjson.json").write_text("{")
    cases = {
        ("--schema", str(tmp_path / "bad.json")): "schema is not valid JSON Schema",
        ("--schema", str(tmp_path / "notjson.json")): "is not JSON",
        ("--model", str(tmp_path / "nope")): "model path does not exist",
        ("--image", str(tmp_path / "none.png")): "image file not found",
        ("--backend", "tgi"): "unknown backend 'tgi'",
    }
    for args, message in cases.items():
        result = runner.invoke(app, ["chat", "hi", *args])
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output
        assert "Traceback" not in result.output


def test_tiny_lists_the_model_ids(tiny_models):
    result = runner.invoke(app, ["tiny"])
    assert result.exit_code == 0 and "tiny:llava-next" in result.output
