"""Loss masks select exactly the intended tokens: checked by decoding the selected runs of a 3-scene
chain under both tiny processors and both text forms."""

import pytest
from PIL import Image

from agents.backends.hf_loading import load_processor
from imagechain.data.conversation import build_conversation
from imagechain.data.render import image_token, tokenize
from imagechain.data.story import Scene, Story
from imagechain.train.loss_masks import IGNORE_INDEX, build_labels, loss_mask
from schemas.errors import DataError

TEXTS = ["A man in a black suit dances with a woman.", "He dips her to the left.", "He loses his balance and falls."]
QUESTIONS = ["What is happening in this image?", "What is happening in the next image?",
             "What is happening in the next image?"]
MODEL_TYPES = {"llava-next": "llava_next", "qwen2-vl": "qwen2_vl"}
# What the model writes after its generation prompt, end-of-turn marker included.
TURN = {("llava-next", "chat"): " {}</s>", ("llava-next", "transcript"): " {}</s>",
        ("qwen2-vl", "chat"): "{}<|im_end|>\n", ("qwen2-vl", "transcript"): " {}</s>"}
CASES = [(name, form) for name in MODEL_TYPES for form in ("chat", "transcript")]


@pytest.fixture(scope="module")
def processors(tiny_models):
    return {name: load_processor(str(tiny_models[name]), model_type) for name, model_type in MODEL_TYPES.items()}


def chain():
    scenes = [Scene([Image.new("RGB", (64, 48), (50 * s, 20 * k, 90)) for k in range(2)], text)
              for s, text in enumerate(TEXTS)]
    return build_conversation(Story("oops---dance_0", "test", scenes), "ImageChain")


def selected_runs(tokenized, processor, mode, form) -> list[str]:
    """The decoded maximal runs of selected positions."""
    ids = tokenized.inputs["input_ids"][0].tolist()
    mask = loss_mask(tokenized, processor, mode, form)
    runs, current = [], []
    for token, keep in zip(ids + [None], mask + [False]):
        if keep:
            current.append(token)
        elif current:
            runs.append(processor.tokenizer.decode(current))
            current = []
    return runs


@pytest.mark.parametrize("name,form", CASES)
def test_assistant_mode_selects_every_assistant_turn(processors, name, form):
    processor = processors[name]
    tokenized = tokenize(chain(), processor, 4096, form=form)
    assert selected_runs(tokenized, processor, "assistant", form) == [TURN[name, form].format(t) for t in TEXTS]


@pytest.mark.parametrize("name,form", CASES)
def test_final_mode_selects_the_target_only(processors, name, form):
    processor = processors[name]
    tokenized = tokenize(chain(), processor, 4096, form=form)
    assert selected_runs(tokenized, processor, "final", form) == [TURN[name, form].format(TEXTS[-1])]
    mask = loss_mask(tokenized, processor, "final", form)
    assert mask.index(True) == tokenized.prompt_length  # the first token the model generates
    assert all(mask[tokenized.prompt_length:])  # the target runs to the end


@pytest.mark.parametrize("name,form", CASES)
def test_all_text_mode_selects_every_token_but_images(processors, name, form):
    processor = processors[name]
    tokenized = tokenize(chain(), processor, 4096, form=form)
    ids = tokenized.inputs["input_ids"][0].tolist()
    image_id = processor.tokenizer.convert_tokens_to_ids(image_token(processor))
    mask = loss_mask(tokenized, processor, "all-text", form)
    assert mask == [token != image_id for token in ids]
    assert sum(not keep for keep in mask) == sum(tokenized.image_token_counts) > 0
    text = "".join(selected_runs(tokenized, processor, "all-text", form))
    for piece in TEXTS + QUESTIONS:
        assert piece in text


def test_labels_ignore_everything_outside_the_mask(processors):
    processor = processors["llava-next"]
    tokenized = tokenize(chain(), processor, 4096)
    labels = build_labels(tokenized, processor, "final")
    ids = tokenized.inputs["input_ids"][0]
    assert labels.shape == ids.shape
    assert (labels[: tokenized.prompt_length] == IGNORE_INDEX).all()
    assert (labels[tokenized.prompt_length:] == ids[tokenized.prompt_length:]).all()


def test_unknown_mode_names_the_modes(processors):
    tokenized = tokenize(chain(), processors["llava-next"], 4096)
    with pytest.raises(DataError, match="unknown loss mode 'targets'.*all-text, assistant, final"):
        loss_mask(tokenized, processors["llava-next"], "targets")


def test_a_template_that_rewrites_earlier_turns_fails_loudly(processors):
    processor = processors["llava-next"]
    # Opens with the number of turns: the rendering of a prefix of the messages is not a prefix of the text.
    template = ("{{ messages | length }} turns\n{% for m in messages %}{{ m['role'] }}: {% for c in m['content'] %}"
                "{% if c['type'] == 'image' %}<image>{% else %}{{ c['text'] }}{% endif %}{% endfor %}\n{% endfor %}")
    conversation = build_conversation(Story("s", "test", [Scene([Image.new("RGB", (64, 48))], "Only.")]),
                                      "FinalScene")
    original = processor.chat_template
    processor.chat_template = template
    try:
        tokenized = tokenize(conversation, processor, 4096)
        with pytest.raises(DataError, match="not a prefix"):
            loss_mask(tokenized, processor, "assistant")
    finally:
        processor.chat_template = original
