"""/self-check: the public legality self-check page (DESIGN §8). No login; zh-CN by default, ``?lang=en``.

GET shows a short questionnaire and a free-text box; POST (a plain HTML form) shows the verdict,
each finding with the article text as the catalogue quotes it (or a marked paraphrase), the
consequences, the next steps and a printable complaint-letter draft in Chinese.

CSRF on a public form: there is no session, but the double-submit scheme of ``api.deps`` still
works — GET sets the browser's CSRF nonce cookie (SameSite=Lax, HttpOnly) and puts the token
derived from it (HMAC with the server secret, bound to the empty session) in the form; POST
checks the pair. A cross-site page can neither read the cookie nor compute the token.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse

from collectguard.api.deps import ContainerDep, csrf_valid
from collectguard.api.ratelimit import client_ip, enforce
from collectguard.domain.assessment import Assessment
from collectguard.rules.extract.form import FORM_CHANNELS, FORM_CONDUCT, FORM_ROLES
from collectguard.services.assess import (
    MAX_TEXT,
    assessment_from_form,
    describe_event,
    finding_articles,
    label,
)
from collectguard.web.i18n import pick_lang
from collectguard.web.render import render

router = APIRouter(include_in_schema=False)

STRINGS: dict[str, tuple[str, str]] = {
    "title": ("合法性自查：催收是否违法？", "Self-check: was this collection lawful?"),
    "intro": ("网贷逾期后被爆通讯录、深夜催收、威胁辱骂？回答几个问题或直接描述经过，我们按现行规则逐条检查，"
              "告诉您哪里违法、可能的法律后果和下一步怎么做。无需登录，不保存您填写的内容。",
              "Contact list blasted, night calls, threats? Answer a few questions or describe what happened; "
              "we check it rule by rule and tell you what was unlawful, the possible consequences and what "
              "to "
              "do next. No login; nothing you enter is stored."),
    "q.who": ("对方联系了谁？（可多选）", "Who was contacted? (tick all that apply)"),
    "q.how": ("怎么联系的？（可多选）", "How? (tick all that apply)"),
    "q.when": ("大概几点？", "What time?"),
    "q.time_of_day": ("或者选择时段", "or pick a part of the day"),
    "q.often": ("一天联系多少次？", "How often a day?"),
    "q.calls": ("拨打次数", "calls"), "q.connected": ("接通次数", "answered"),
    "q.said": ("对方说了或做了什么？（可多选）", "What did they say or do? (tick all that apply)"),
    "q.third": ("如果联系了您以外的人", "If someone other than you was contacted"),
    "q.unreachable": ("当时您本人是否联系不上？", "Could you yourself not be reached at the time?"),
    "q.source": ("他们的号码从哪来？", "Where did their number come from?"),
    "q.purpose": ("对方找他们做什么？", "What did they ask them for?"),
    "q.refused": ("他们之前是否已拒绝或要求别再联系？", "Had they refused or asked not to be contacted?"),
    "q.consent": ("您是否同意过对方使用通讯录？", "Did you agree to the use of your contact list?"),
    "q.visit": ("如有上门：来了几个人？", "If there was a visit: how many came?"),
    "q.agency": ("是催收公司（外包）吗？", "Was it an outside collection agency?"),
    "q.text": ("用自己的话描述经过（可选，"
               "中文或英文）", "Describe what happened in your own words (optional)"),
    "text.placeholder": ("例如：我网贷逾期了，他们晚上十一点半给我打电话，"
                         "还给我通讯录里的人发短信说我欠钱不还",
                         "e.g. They called me at 11:30 pm and texted my sister that I owe money"),
    "yes": ("是", "yes"), "no": ("否", "no"), "unsure": ("不确定", "not sure"),
    "day": ("白天（8:00–22:00）", "daytime "
                                  "(08:00–22:00)"), "night": ("夜间（22:00以后）", "night (after 22:00)"),
    "early": ("清晨（8:00以前）", "early morning (before 08:00)"),
    "none": ("没有同意", "no"), "bundled": ("注册时一揽子勾选", "ticked in the sign-up terms"),
    "separate": ("单独明确同意过", "separately and explicitly"),
    "submit": ("检查", "Check"),
    "result": ("检查结果", "Result"),
    "verdict.unlawful": ("违法", "Unlawful"), "verdict.lawful": ("未发现违法", "No breach found"),
    "verdict.undetermined": ("尚不能确定", "Not yet determined"),
    "verdict.unlawful.sub": ("根据您提供的事实，"
                             "以下做法违反了法律或监管规定。", "On your facts, the following broke the law "
                                                               "or the rules."),
    "verdict.lawful.sub": ("根据您提供的事实，"
                           "这次联系没有违反我们检查的规则。", "On your facts, this contact broke none of "
                                                               "the rules we check."),
    "verdict.undetermined.sub": ("结论取决于下面几个事实，"
                                 "请补充后再检查。", "The verdict depends on the facts below; add them and "
                                                     "check again."),
    "facts": ("我们理解的事实", "Facts as understood"),
    "findings": ("违法之处", "What was unlawful"), "basis": ("依据", "Basis"),
    "paraphrase": ("转述", "paraphrase"), "secondary": ("据二手来源转引，"
                                                        "尚待与官方文本核对", "from a secondary copy; to "
                                                                              "be checked against the "
                                                                              "official text"),
    "missing": ("需要补充的事实", "Missing facts"),
    "possible": ("如果这些事实成立，可能违法的地方", "What may be unlawful, depending on those facts"),
    "consequences": ("可能的法律后果", "Possible legal consequences"),
    "kind.civil": ("民事", "Civil"), "kind.administrative": ("行政", "Administrative"),
    "kind.criminal": ("刑事", "Criminal"),
    "steps": ("下一步可以怎么做", "What you can do next"), "notes": ("说明", "Notes"),
    "letter": ("投诉信草稿（可打印）", "Complaint letter draft (printable, in Chinese)"),
    "letter.print": ("打印投诉信", "Print the letter"),
    "letter.hint": ("请补全下划线处的信息，"
                    "核对事实后再提交。", "Fill in the blanks and check the facts before sending."),
    "again": ("修改答案，再检查一次", "Change your answers and check again"),
    "error.csrf": ("页面已过期，请重新提交。", "The page expired; please submit it again."),
    "error.rate": ("提交太频繁，请稍后再试。", "Too many checks; please try again shortly."),
    "error.input": ("请至少选择联系了谁，或描述经过。", "Tick who was contacted, or describe what happened."),
    "disclaimer": ("本结果由规则自动得出，仅供参考，"
                   "不构成法律意见。", "An automatic check against rules; not legal advice."),
}


def _strings(lang: str) -> dict[str, str]:
    i = 0 if lang.startswith("zh") else 1
    return {k: v[i] for k, v in STRINGS.items()}


def _first_person(text: str) -> str:
    return text.replace("您本人", "本人").replace("您", "本人")


def _options(lang: str) -> dict[str, list[tuple[str, str]]]:
    return {"who": [(r, label(r, lang)) for r in FORM_ROLES],
            "how": [(c, label(c, lang)) for c in FORM_CHANNELS],
            "said": [(s, label(s, lang)) for s in FORM_CONDUCT],
            "source": [(s, label(s, lang)) for s in ("borrower_designated", "contact_list")],
            "purpose": [(p, label(p, lang)) for p in ("locate", "collect")]}


def _page(request: Request, *, status: int = 200, answers: dict[str, Any] | None = None,
          error: str | None = None, result: Assessment | None = None) -> HTMLResponse:
    lang = pick_lang(request)
    extra: dict[str, Any] = {}
    if result is not None:
        extra = {
            "facts_lines": [describe_event(e.facts, set(e.unknown), lang) for e in result.events],
            "articles": [finding_articles(f, lang) for f in result.findings],
            # The letter is written by the borrower: "您" (you) becomes "本人" (I, the undersigned).
            "letter_facts": [_first_person(describe_event(e.facts, set(e.unknown), "zh")) for e in result.events],
            "letter_findings": [(_first_person(f.title_zh or f.rule), _first_person(f.explain_zh),
                                 "；".join(a["label"] for a in finding_articles(f, "zh"))) for f in result.findings],
            "third_party": any(e.facts.get("recipient", {}).get("role") not in ("borrower", "guarantor")
                               for e in result.events),
        }
    resp = render(request, "selfcheck.html" if result is None else "selfcheck_result.html",
                  s=_strings(lang), o=_options(lang), a=answers or {}, error=error, r=result,
                  max_text=MAX_TEXT, **extra)
    resp.status_code = status
    return resp


@router.get("/self-check", response_class=HTMLResponse)
def selfcheck_form(request: Request) -> HTMLResponse:
    """The questionnaire."""
    return _page(request)


@router.post("/self-check", response_class=HTMLResponse)
def selfcheck_submit(
    request: Request,
    c: ContainerDep,
    csrf_token: Annotated[str, Form(max_length=128)] = "",
    who: Annotated[list[str], Form(max_length=40)] = [],  # noqa: B006 - FastAPI copies form defaults
    how: Annotated[list[str], Form(max_length=40)] = [],  # noqa: B006
    said: Annotated[list[str], Form(max_length=40)] = [],  # noqa: B006
    time: Annotated[str, Form(max_length=10)] = "",
    time_of_day: Annotated[str, Form(max_length=10)] = "",
    calls_per_day: Annotated[str, Form(max_length=6)] = "",
    connected_per_day: Annotated[str, Form(max_length=6)] = "",
    unreachable: Annotated[str, Form(max_length=10)] = "",
    source: Annotated[str, Form(max_length=30)] = "",
    purpose: Annotated[str, Form(max_length=30)] = "",
    refused: Annotated[str, Form(max_length=10)] = "",
    consent_contact_list: Annotated[str, Form(max_length=20)] = "",
    visitors: Annotated[str, Form(max_length=4)] = "",
    agency: Annotated[str, Form(max_length=10)] = "",
    text: Annotated[str, Form(max_length=MAX_TEXT)] = "",
) -> HTMLResponse:
    """Check the answers and show the result (or the form again with an error)."""
    answers: dict[str, Any] = {
        "who": who, "how": how, "said": said, "time": time, "time_of_day": time_of_day,
        "calls_per_day": calls_per_day, "connected_per_day": connected_per_day, "unreachable": unreachable,
        "source": source, "purpose": purpose, "refused": refused,
        "consent_contact_list": consent_contact_list,
        "visitors": visitors, "agency": agency, "text": text,
    }
    s = _strings(pick_lang(request))
    try:
        enforce(request, f"assess:{client_ip(request)}", c.settings.assess_rate_limit_per_minute)
    except HTTPException as exc:
        resp = _page(request, status=429, answers=answers, error=s["error.rate"])
        resp.headers.update(exc.headers or {})
        return resp
    if not csrf_valid(request, csrf_token):
        return _page(request, status=403, answers=answers, error=s["error.csrf"])
    if not who and not text.strip():
        return _page(request, status=422, answers=answers, error=s["error.input"])
    result = assessment_from_form(answers, text=text, now=c.clock())
    return _page(request, answers=answers, result=result)
