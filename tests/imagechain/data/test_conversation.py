"""Every Table 1 variant of a 3-scene story: golden text under the tiny LLaVA-NeXT and Qwen2-VL
processors, and token ids whose image tokens are one image's worth per scene visual."""

import pytest
from PIL import Image

from agents.backends.hf_loading import load_processor
from imagechain.data.conversation import VARIANTS, Conversation, build_conversation
from imagechain.data.render import StoryTooLong, image_token, render, tokenize, tokenize_fitting
from imagechain.data.story import Scene, Story
from schemas.errors import DataError

DESCRIPTIONS = ["A man in a black suit dances with a woman.", "He dips her to the left.",
                "He loses his balance and falls."]
FLAT = "These images are the scenes of one story, in order, each followed by its description.\n"


def make_story(story_id="oops---dance_0", descriptions=DESCRIPTIONS, split="val", size=(64, 48)):
    scenes = [Scene([Image.new("RGB", size, (40 * s, 10 * k, 90)) for k in range(2)], text)
              for s, text in enumerate(descriptions)]
    return Story(story_id, "test", scenes, split=split)


POOL = [make_story(f"demo{i}", [f"Demo {i} part 1.", f"Demo {i} part 2."], split="train") for i in range(4)]


def llava_flat(parts, question="What is happening in the last image?", intro=FLAT):
    return "USER: " + intro + "".join(f"<image>\n{p}\n" for p in parts) + f"<image>\n{question} ASSISTANT: "


def qwen_flat(parts, question="What is happening in the last image?", intro=FLAT):
    image = "<|vision_start|><|image_pad|><|vision_end|>"
    return ("<|im_start|>user\n" + intro + "".join(f"{image}{p}\n" for p in parts) + f"{image}{question}"
            "<|im_end|>\n<|im_start|>assistant\n")


LLAVA_CHAIN = ("USER: <image>\nWhat is happening in this image? ASSISTANT: A man in a black suit dances with a "
               "woman.</s>USER: <image>\nWhat is happening in the next image? ASSISTANT: He dips her to the left."
               "</s>USER: <image>\nWhat is happening in the next image? ASSISTANT: He loses his balance and falls.</s>")
QWEN_CHAIN = ("<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>What is happening in this image?"
              "<|im_end|>\n<|im_start|>assistant\nA man in a black suit dances with a woman.<|im_end|>\n"
              "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>What is happening in the next image?"
              "<|im_end|>\n<|im_start|>assistant\nHe dips her to the left.<|im_end|>\n"
              "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>What is happening in the next image?"
              "<|im_end|>\n<|im_start|>assistant\nHe loses his balance and falls.<|im_end|>\n")
TARGET = "He loses his balance and falls."
# MLLM-ICL's three demonstrations, drawn from POOL by a hash of the story id: always demo2, demo0, demo1.
DEMOS = (2, 0, 1)

GOLDEN = {
    "llava-next": {
        "MLLM": llava_flat(DESCRIPTIONS[:2]) + TARGET + "</s>",
        "MLLM-ICL": "".join(llava_flat([f"Demo {i} part 1."]) + f"Demo {i} part 2.</s>" for i in DEMOS)
                    + llava_flat(DESCRIPTIONS[:2]) + TARGET + "</s>",
        "MLLM-FT": llava_flat(DESCRIPTIONS[:2]) + TARGET + "</s>",
        "VisualContext": "USER: These images are the scenes of one story, in order.\n<image>\n<image>\n<image>\n"
                         "What is happening in the last image? ASSISTANT: He loses his balance and falls.</s>",
        "FinalScene": "USER: <image>\nWhat is happening in this image? ASSISTANT: He loses his balance and falls.</s>",
        "ImageChain-NoFT": LLAVA_CHAIN,
        "ImageChain": LLAVA_CHAIN,
    },
    "qwen2-vl": {
        "MLLM": qwen_flat(DESCRIPTIONS[:2]) + TARGET + "<|im_end|>\n",
        "MLLM-ICL": "".join(qwen_flat([f"Demo {i} part 1."]) + f"Demo {i} part 2.<|im_end|>\n" for i in DEMOS)
                    + qwen_flat(DESCRIPTIONS[:2]) + TARGET + "<|im_end|>\n",
        "MLLM-FT": qwen_flat(DESCRIPTIONS[:2]) + TARGET + "<|im_end|>\n",
        "VisualContext": "<|im_start|>user\nThese images are the scenes of one story, in order.\n"
                         + "<|vision_start|><|image_pad|><|vision_end|>" * 3 + "What is happening in the last image?"
                         "<|im_end|>\n<|im_start|>assistant\nHe loses his balance and falls.<|im_end|>\n",
        "FinalScene": "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>What is happening in this image?"
                      "<|im_end|>\n<|im_start|>assistant\nHe loses his balance and falls.<|im_end|>\n",
        "ImageChain-NoFT": QWEN_CHAIN,
        "ImageChain": QWEN_CHAIN,
    },
}
MODEL_TYPES = {"llava-next": "llava_next", "qwen2-vl": "qwen2_vl"}


@pytest.fixture(scope="module")
def processors(tiny_models):
    return {name: load_processor(str(tiny_models[name]), kind) for name, kind in MODEL_TYPES.items()}


@pytest.mark.parametrize("model", MODEL_TYPES)
def test_every_variant_renders_to_the_golden_text(processors, model):
    assert set(GOLDEN[model]) == set(VARIANTS)
    for variant, expected in GOLDEN[model].items():
        conversation = build_conversation(make_story(), variant, POOL)
        assert render(conversation, processors[model]) == expected, variant
        assert conversation.target == TARGET


def test_prompt_form_and_the_paper_transcript(processors):
    chain = build_conversation(make_story(), "ImageChain")
    assert render(chain, processors["llava-next"], with_target=False) == LLAVA_CHAIN.removesuffix(f" {TARGET}</s>")
    assert render(chain, processors["qwen2-vl"], with_target=False) == QWEN_CHAIN.removesuffix(f"{TARGET}<|im_end|>\n")
    assert render(chain, processors["llava-next"], "transcript") == (
        "USER: <Image><image></Image> What is happening in this image? ASSISTANT: A man in a black suit dances "
        "with a woman.</s><s>USER: <Image><image></Image> What is happening in the next image? ASSISTANT: He dips "
        "her to the left.</s><s>USER: <Image><image></Image> What is happening in the next image? ASSISTANT: He "
        "loses his balance and falls.</s>")
    assert render(chain, processors["qwen2-vl"], "transcript", with_target=False).endswith(
        "</s><s>USER: <|vision_start|><|image_pad|><|vision_end|> What is happening in the next image? ASSISTANT:")


def test_conversation_shape_for_training():
    story = make_story()
    chain = build_conversation(story, "ImageChain", system="Describe each scene.")
    assert [m["role"] for m in chain.messages] == ["system", "user", "assistant", "user", "assistant", "user",
                                                  "assistant"]
    assert chain.messages[1]["content"] == [{"type": "image"},
                                            {"type": "text", "text": "What is happening in this image?"}]
    assert chain.messages[-1]["content"] == [{"type": "text", "text": TARGET}]
    assert chain.scene_frames == [scene.frames for scene in story.scenes] and chain.num_scenes == 3
    assert build_conversation(story, "FinalScene").scene_frames == [story.scenes[2].frames]
    icl = build_conversation(story, "MLLM-ICL", POOL)
    assert len(icl.scene_frames) == 3 * 2 + 3 and icl.scene_frames[-3:] == chain.scene_frames


@pytest.mark.parametrize("model", MODEL_TYPES)
@pytest.mark.parametrize("form", ["chat", "transcript"])
def test_tokens_have_one_image_worth_per_scene_visual(processors, model, form):
    processor = processors[model]
    token = image_token(processor)
    image_id = processor.tokenizer.convert_tokens_to_ids(token)
    one_image = processor(text=[token], images=[Image.new("RGB", (64, 48))], return_tensors="pt")
    per_image = int((one_image["input_ids"] == image_id).sum())
    assert per_image == {"llava-next": 70, "qwen2-vl": 12}[model]   # 64x48 under each tiny processor
    for variant in VARIANTS:
        conversation = build_conversation(make_story(), variant, POOL)
        tokenized = tokenize(conversation, processor, max_length=4096, form=form)
        ids = tokenized.inputs["input_ids"][0]
        assert tokenized.image_token_counts == [per_image] * len(conversation.scene_frames), variant
        assert int((ids == image_id).sum()) == per_image * len(conversation.scene_frames)
        target_text = processor.tokenizer.decode(ids[tokenized.prompt_length:])
        assert target_text.strip().startswith(TARGET), (variant, target_text)


def test_too_long_is_an_error_or_a_counted_skip(processors):
    processor = processors["llava-next"]
    chain = build_conversation(make_story(), "ImageChain")
    length = tokenize(chain, processor, max_length=4096).length
    with pytest.raises(StoryTooLong, match=f"story 'oops---dance_0' is {length} tokens, over the context length 100"):
        tokenize(chain, processor, max_length=100)
    short = build_conversation(make_story("short", DESCRIPTIONS[:1]), "ImageChain")
    kept, skipped = tokenize_fitting([chain, short], processor, max_length=length - 1)
    assert [t.conversation.story_id for t in kept] == ["short"] and skipped == ["oops---dance_0"]


def test_mismatches_are_errors_naming_the_story(processors):
    processor = processors["llava-next"]
    chain = build_conversation(make_story(), "ImageChain")
    broken = Conversation(chain.story_id, chain.variant, chain.messages, chain.scene_frames[:2], TARGET, 3)
    with pytest.raises(DataError, match="story 'oops---dance_0' \\(ImageChain\\): 3 image placeholders but 2"):
        tokenize(broken, processor, max_length=4096)
    sneaky = build_conversation(make_story(descriptions=["Look: <image>", "b", "c"]), "ImageChain")
    with pytest.raises(DataError, match="rendered text has 4 image placeholders but 3 scene visuals"):
        render(sneaky, processor)
    mixed = make_story()
    mixed.scenes[1].frames.append(Image.new("RGB", (32, 32)))
    with pytest.raises(DataError, match="scene visual 1 mixes frame sizes"):
        tokenize(build_conversation(mixed, "ImageChain"), processor, max_length=4096)
    with pytest.raises(DataError, match="training split"):
        build_conversation(make_story(), "MLLM-ICL", [make_story(f"v{i}", split="val") for i in range(3)])
    with pytest.raises(DataError, match="unknown variant 'GPT'"):
        build_conversation(make_story(), "GPT")
