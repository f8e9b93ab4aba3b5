"""Step 1's annotators and step 3's quiz takers: the tasks open to them, the task without its truth
or the models' answers, and their answers (docs/review.md). Annotators see the truth after they
submit; quiz takers never do."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from agents.protocol.turns import task_script
from vischain.review.catalog import Entry
from vischain.review.records import STATUSES, Conflict, HumanAnswer, Reviewer, TaskState
from vischain.review.views import task_view
from vischain.review.web import Review, allowed, form_int, form_text, message_page, render, task_route


def open_to(review: Review, person: Reviewer) -> list[Entry]:
    """Annotators: every task not rejected; quiz takers: accepted tasks. Those this person has not answered
    on their current revision, in queue order."""
    states, done = review.store.states(), review.store.answered_by(person)
    wanted = ("accepted",) if person.role == "quiz" else tuple(s for s in STATUSES if s != "rejected")
    return [e for e in review.catalog.entries
            if (states.get(e.key) or TaskState(*e.key)).status in wanted and e.key not in done]


@allowed("annotator")
async def annotate_list(request: Request, person: Reviewer) -> Response:
    review: Review = request.app.state.review
    tasks = await run_in_threadpool(open_to, review, person)
    notice = "Flag recorded; a reviewer will look at it." if request.query_params.get("flagged") else None
    return render(request, "answer_list.html", {"tasks": tasks[:100], "left": len(tasks), "prefix": "/annotate",
                                                "notice": notice}, person=person)


@allowed("quiz")
async def quiz_list(request: Request, person: Reviewer) -> Response:
    review: Review = request.app.state.review
    tasks = await run_in_threadpool(open_to, review, person)
    notice = "Answers recorded." if request.query_params.get("done") else None
    return render(request, "answer_list.html", {"tasks": tasks[:100], "left": len(tasks), "prefix": "/quiz",
                                                "notice": notice}, person=person)


@allowed("annotator", "quiz")
@task_route
async def answer_page(request: Request, person: Reviewer, entry: Entry) -> Response:
    """The task to answer, truth and model answers left out."""
    review: Review = request.app.state.review
    if (person.role == "quiz") != request.url.path.startswith("/quiz/"):
        return message_page(request, 403, "Not for your role", f"You take part as {person.role}.", person)

    def page() -> Response:
        if entry.key not in {e.key for e in open_to(review, person)}:
            return message_page(request, 409, "Not open for you",
                                "You answered this task already, or it is not open for answers now.", person)
        item = review.catalog.item(entry)
        state = review.store.state(entry.kind, entry.task_id)
        return render(request, "answer.html", {"entry": entry, "view": task_view(review.catalog, entry, item),
                                               "state": state, "missing": False}, person=person)
    return await run_in_threadpool(page)


@allowed("annotator", "quiz")
@task_route
async def submit_answers(request: Request, person: Reviewer, entry: Entry) -> Response:
    """Annotators see the truth beside their answers afterwards; quiz takers only that it was recorded."""
    review: Review = request.app.state.review
    if (person.role == "quiz") != request.url.path.startswith("/quiz/"):
        return message_page(request, 403, "Not for your role", f"You take part as {person.role}.", person)
    form = await request.form()
    revision = form_int(form, "revision")

    def submit() -> Response:
        item = review.catalog.item(entry)
        questions = task_script(item).questions
        answers = []
        for question in questions:
            label = form.get(f"q{question.number}")
            if label not in {choice_label for choice_label, _ in question.choices}:
                state = review.store.state(entry.kind, entry.task_id)
                return render(request, "answer.html", {"entry": entry, "view": task_view(review.catalog, entry, item),
                                                       "state": state, "missing": True}, 422, person)
            answers.append(HumanAnswer(question.number, label, question.truth))
        try:
            review.store.submit_answers(person, entry.kind, entry.task_id, revision, answers, review.quiz_threshold)
        except Conflict as err:
            return message_page(request, 409, "Not saved", str(err), person)
        if person.role == "quiz":
            return RedirectResponse("/quiz?done=1", status_code=303)
        return render(request, "answered.html", {"entry": entry, "answers": answers, "revision": revision},
                      person=person)
    return await run_in_threadpool(submit)


@allowed("annotator")
@task_route
async def annotator_flag(request: Request, person: Reviewer, entry: Entry) -> Response:
    review: Review = request.app.state.review
    form = await request.form()
    revision, note = form_int(form, "revision"), form_text(form, "note").strip()

    def flag() -> Response:
        try:
            review.store.decide(person, entry.kind, entry.task_id, "flag", revision, note)
        except Conflict as err:
            return message_page(request, 409, "Not saved", str(err), person)
        return RedirectResponse("/annotate?flagged=1", status_code=303)
    return await run_in_threadpool(flag)
