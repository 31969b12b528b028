"""UI strings in zh-CN (default) and English. ``?lang=en`` or the cookie ``lang`` switches."""

from __future__ import annotations

from fastapi import Request

LANGS = ("zh-CN", "en")

MESSAGES: dict[str, dict[str, str]] = {
    "app.name": {"zh-CN": "合规催收平台", "en": "collectguard"},
    "app.tagline": {
        "zh-CN": "每一次催收联系之前先经合规检查：不爆通讯录、不骚扰、不威胁，全程留痕。",
        "en": "Every collection contact is checked before it happens: no contact-list blasting, "
        "no harassment, no threats, a full record.",
    },
    "nav.home": {"zh-CN": "首页", "en": "Home"},
    "nav.selfcheck": {"zh-CN": "合法性自查", "en": "Self-check"},
    "nav.portal": {"zh-CN": "借款人服务", "en": "Borrower portal"},
    "nav.work": {"zh-CN": "催收工作台", "en": "Workbench"},
    "nav.compliance": {"zh-CN": "合规看板", "en": "Compliance"},
    "nav.api": {"zh-CN": "API 文档", "en": "API docs"},
    "lang.switch": {"zh-CN": "English", "en": "中文"},
    "fig.title": {"zh-CN": "资产概况", "en": "Portfolio"},
    "fig.as_of": {"zh-CN": "统计日期", "en": "As of"},
    "fig.borrowers": {"zh-CN": "借款人", "en": "Borrowers"},
    "fig.loans": {"zh-CN": "贷款笔数", "en": "Loans"},
    "fig.principal": {"zh-CN": "放款本金", "en": "Principal lent"},
    "fig.overdue_loans": {"zh-CN": "逾期贷款", "en": "Overdue loans"},
    "fig.overdue_amount": {"zh-CN": "逾期金额", "en": "Overdue amount"},
    "fig.empty": {
        "zh-CN": "数据库中还没有数据。运行 collectguard demo 生成演示数据，或用 collectguard import 导入 CSV。",
        "en": "The database is empty. Run `collectguard demo` for demo data, or `collectguard import` for CSV.",
    },
    "principles.title": {"zh-CN": "我们坚持的规则", "en": "The rules we keep"},
    "principles.1": {
        "zh-CN": "只向债务人本人催收；联系第三人仅限债务人失联时询问联系方式或转告，绝不透露欠款信息。",
        "en": "Collect only from the debtor; a third party only when the debtor is unreachable, only to "
        "locate or relay a message, never revealing the debt.",
    },
    "principles.2": {
        "zh-CN": "通讯录不是合法的催收来源；未经单独同意不得使用。",
        "en": "A harvested contact list is not a lawful source; never without separate consent.",
    },
    "principles.3": {
        "zh-CN": "每日 22:00 至次日 8:00 不催收；每日接通不超过 3 次，同一号码拨打不超过 6 次。",
        "en": "No collection 22:00–08:00; at most 3 connected calls a day and 6 dials to one number.",
    },
    "principles.4": {
        "zh-CN": "每一次判断、联系、同意变更都写入防篡改的审计链。",
        "en": "Every decision, contact and consent change goes into a tamper-evident audit chain.",
    },
    "footer": {
        "zh-CN": "本平台提供合规检查工具，不构成法律意见。",
        "en": "collectguard is a compliance tool, not legal advice.",
    },
}


def pick_lang(request: Request) -> str:
    q = request.query_params.get("lang") or request.cookies.get("lang") or ""
    if q.lower().startswith("en"):
        return "en"
    return "zh-CN"


def translator(lang: str):  # type: ignore[no-untyped-def]
    def t(key: str) -> str:
        entry = MESSAGES.get(key)
        if entry is None:
            return key
        return entry.get(lang) or entry["zh-CN"]

    return t
