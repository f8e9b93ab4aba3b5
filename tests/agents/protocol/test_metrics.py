from agents.protocol.metrics import Bootstrap, score_answers, score_model, tally_tasks


def line(task, q, correct, format_error=False, kind="itmr", domain="engineering", model="m", skipped=False):
    return {"task_id": task, "kind": kind, "domain": domain, "model": model, "question": q,
            "correct": correct, "format_error": format_error, "skipped": skipped}


# Three ITMR tasks (one all right, one half right with a format error, one skipped after nothing)
# and one IOMR task in another domain, all right.
LINES = [
    line("a", 1, True), line("a", 2, True),
    line("b", 1, True), line("b", 2, False, format_error=True),
    line("c", 1, False), line("c", 2, False, skipped=True),
    line("d", 1, True, kind="iomr", domain=None), line("d", 2, True, kind="iomr", domain=None),
]


def test_ca_tc_and_format_errors_by_hand():
    result = score_model(LINES)
    overall = result["overall"]
    assert (overall["ca"], overall["tc"], overall["format_error_rate"]) == (0.625, 0.5, 0.125)
    assert (overall["questions"], overall["tasks"], overall["format_errors"]) == (8, 4, 1)
    itmr = result["by_kind"]["itmr"]
    assert (itmr["ca"], itmr["tc"], itmr["questions"], itmr["tasks"]) == (0.5, round(1 / 3, 4), 6, 3)
    assert result["by_kind"]["iomr"]["ca"] == 1.0
    assert set(result["by_domain"]) == {"engineering", "unknown"}
    assert result["by_domain"]["unknown"]["tasks"] == 1
    macro = result["overall_macro"]
    assert (macro["ca"], macro["tc"], macro["kinds"]) == (0.75, round((1 / 3 + 1) / 2, 4), 2)


def test_intervals_are_seeded_and_contain_the_estimate():
    first, second = score_model(LINES), score_model(LINES)
    assert first == second
    for fig in [first["overall"], first["overall_macro"], *first["by_kind"].values()]:
        for name in ("ca", "tc", "format_error_rate"):
            low, high = fig[f"{name}_ci"]
            assert 0 <= low <= fig[name] <= high <= 1
    assert first["by_kind"]["iomr"]["ca_ci"] == [1.0, 1.0]  # every resample of a perfect kind is perfect


def test_the_interval_narrows_with_more_tasks():
    few = score_model([line(str(i), 1, i % 2 == 0) for i in range(10)])["overall"]["ca_ci"]
    many = score_model([line(str(i), 1, i % 2 == 0) for i in range(400)])["overall"]["ca_ci"]
    assert many[1] - many[0] < (few[1] - few[0]) / 3
    # 400 coin flips: the 95% interval is about +-1.96 * sqrt(.25 / 400) = +-4.9 points.
    assert abs((many[1] - many[0]) / 2 - 0.049) < 0.01
    assert score_model([line(str(i), 1, i % 2 == 0) for i in range(400)], Bootstrap(seed=1))["overall"]["ca_ci"] != many


def test_models_are_scored_apart_and_tasks_tallied_once():
    lines = LINES + [line("a", 1, False, model="n"), line("a", 2, False, model="n")]
    scores = score_answers(lines)
    assert set(scores) == {"m", "n"} and scores["n"]["overall"]["ca"] == 0.0
    assert [t.questions for t in tally_tasks(LINES)] == [2, 2, 2, 2]
