"""Predictions and judgments of two variants over stories of 2 to 6 scenes, for the results tests."""

from imagechain.eval.predict import prediction_id

JUDGE = {"kind": "llm", "name": "llm:llama-3-70b", "prompt": "ImageChain Appendix A", "prompt_sha256": "ab" * 32,
         "paper_metric": True}


def prediction(variant, story, scenes, status="ok"):
    return {"story_id": story, "variant": variant, "model": "m", "prompt_hash": "h", "params": {},
            "num_scenes": scenes, "reference": "r", "text": f"{variant} {story}" if status == "ok" else None,
            "status": status}


def predictions_and_judgments():
    # ImageChain: C2 yes, C2 no, C3 yes, C4 yes (unparseable No), C6 no, one too long at C5.
    plan = [("s1", 2, True, True), ("s2", 2, False, True), ("s3", 3, True, True), ("s4", 4, False, False),
            ("s5", 6, False, True)]
    predictions = [prediction("ImageChain", s, n) for s, n, _, _ in plan] + [prediction("ImageChain", "s6", 5,
                                                                                       "too_long")]
    predictions += [prediction("MLLM", s, n) for s, n, _, _ in plan]
    judgments = {}
    for p in predictions:
        if p["status"] != "ok":
            continue
        similar, parsed = next((y, ok) for s, _, y, ok in plan if s == p["story_id"])
        similar = similar and p["variant"] == "ImageChain"
        judgments[prediction_id(p)] = {"similar": similar, "parsed": parsed, "raw": "x"}
    return predictions, judgments
