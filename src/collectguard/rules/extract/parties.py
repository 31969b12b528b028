"""Who was contacted: the borrower, named third parties, the contact list, the public.

Roles are DESIGN §5's ``recipient.role`` values; ``source`` is set only where the words say it
(``通讯录`` -> ``contact_list``; an emergency contact is one the borrower designated). Third
parties are matched first and masked, so ``给我妈打电话`` is a call to a relative, not to "me".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from collectguard.rules.extract.numerals import COUNT, count_value

__all__ = ["Party", "borrower_addressed", "find_parties"]


@dataclass(frozen=True)
class Party:
    """One recipient named in a clause."""

    role: str
    source: str | None
    count: int  # people reached (at least)
    text: str
    start: int


_ZH_ROLES: dict[str, tuple[str, ...]] = {
    role: tuple(words.split())
    for role, words in {
        "spouse": "老婆 老公 妻子 丈夫 爱人 媳妇 配偶",
        "relative": "我妈 妈妈 母亲 老妈 我爸 爸爸 父亲 老爸 父母 爸妈 家人 家里人 家属 亲戚 亲人 亲友 "
                    "哥哥 姐姐 弟弟 妹妹 我姐 我哥 我弟 我妹 儿子 女儿 孩子 舅舅 姑姑 叔叔 阿姨 "
                    "爷爷 奶奶 外婆 外公 姥姥 姥爷 岳父 岳母 公公 婆婆 表哥 表姐 表弟 表妹 堂哥 堂姐",
        "colleague": "同事",
        "employer": "领导 老板 上司 主管 经理 单位 我公司 我们公司 我的公司 人事 hr",
        "other_third_party": "朋友 好友 同学 室友 邻居 闺蜜 对象 男朋友 女朋友",
        "public": "朋友圈 微信群 qq群 家族群 工作群 群里 群聊 拉群 建群 微博 抖音 快手 贴吧 网上 "
                  "村里 小区 公告栏 社交媒体",
    }.items()
}
_EN_ROLES: dict[str, tuple[str, ...]] = {
    "spouse": ("my wife", "my husband", "my spouse"),
    "relative": ("my "
                 "mom", "my mother", "my mum", "my dad", "my father", "my parents", "my sister", "my brother",
                 "my "
                 "family", "my "
                           "relatives", "my relative", "my cousin", "my aunt", "my uncle", "my grandmother",
                 "my "
                 "grandma", "my grandfather", "my grandpa", "my son", "my daughter", "my kids", "my children",
                 "my in-laws", "my siblings"),
    "colleague": ("my "
                  "coworkers", "my "
                               "coworker", "my co-workers", "my co-worker", "my colleagues", "my colleague"),
    "employer": ("my "
                 "boss", "my "
                         "manager", "my employer", "my supervisor", "my company", "my workplace", "my office",
                 "my hr", "my work"),
    "other_third_party": ("my "
                          "friends", "my "
                                     "friend", "my neighbours", "my neighbour", "my neighbors", "my neighbor",
                          "my roommate", "my classmates", "my partner", "my girlfriend", "my boyfriend"),
    "public": ("facebook", "twitter", "instagram", "tiktok", "wechat group", "group chat", "social media",
               "whatsapp group", "on the internet", "online"),
}
_ROLE_OF = {w: r for table in (_ZH_ROLES, _EN_ROLES) for r, words in table.items() for w in words}
# Latin keywords only on word boundaries ("hr" is not in "through").
_KEYWORDS = re.compile("|".join(rf"\b{re.escape(w)}\b" if w.isascii() else re.escape(w)
                                for w in sorted(_ROLE_OF, key=len, reverse=True)))

# The contact list, with an optional count and an optional role inside it ("通讯录里的同事").
_ZH_CONTACT_LIST = re.compile(
    rf"(?:手机)?通讯录(?:里|中|上|内)?(?:面)?(?:的)?(?:(?P<n>{COUNT})\s?(?:个|位|多个|来个)?)?"
    r"(?:所有|全部|每个|每一个)?(?:的)?(?P<who>同事|朋友|好友|亲戚|家人|领导|亲友|联系人|人|号码)?"
    r"|(?:所有|全部|手机|我的)联系人|联系人列表"
)
_EN_CONTACT_LIST = re.compile(
    rf"(?:(?P<n>{COUNT}) |everyone |everybody |all |people |numbers |friends )?(?:of |in |on |from )?"
    r"my (?:phone(?:'s)? )?(?:contacts?(?: list)?|phone ?book|address book)"
    r"|everyone in my phone|(?:all|everyone in) my contacts"
)
_EMERGENCY = re.compile(r"紧急联系人|(?:my )?emergency contacts?")
_MANY = re.compile(r"所有|全部|每个|每一个|挨个|一个个|们|everyone|everybody|\ball\b|many|several")
_BORROWER = re.compile(
    r"给我|打给我|发给我|打我|找我|骂我|催我|联系我|威胁我|恐吓我|吓唬我|我接|对我|"
    r"我(?:的)?(?:手机|电话)(?:上|里)?(?:收到|接到)|"
    r"跟我说|和我说|向我|来我家|到我家|去我家|我家|堵我|跟踪我|我本人|本人|我收到|我这|我一个人"
    r"|\bme\b|\bi (?:got|received|answered|picked up)\b|\bmy (?:phone|cell|mobile|number|home|house|door|"
    r"apartment)\b"
)
_QUALIFIES_GROUP = re.compile(r"的?(?:工作|微信|qq)?群|'s (?:group|chat)")
_POSSESSIVE = re.compile(r"(?:我们|我)(?:的)?(?=#)|\bmy (?=#)")
_COLLECTOR_WORDS = re.compile(r"(?:催收|贷款|网贷|小贷|借贷|金融|科技|外包|放贷)公司|平台")


def _count(clause: str, m: re.Match[str], *, default: int) -> int:
    n = m.groupdict().get("n")
    value = count_value(n) if n else None
    if value is not None and value >= 1:
        return value
    # Plural only from the words around this party ("同事们", "所有亲戚", "all my coworkers"):
    # a "都" elsewhere in the clause may be about someone else ("给我和我妈都打了").
    around = clause[max(0, m.start() - 4):m.end() + 1]
    word = m.group(0)
    plural = word.isascii() and word.endswith("s") and not word.endswith("ss")  # "my parents", not "my boss"
    return max(default, 2) if plural or _MANY.search(around) else default


def find_parties(clause: str) -> tuple[list[Party], str]:
    """Third parties named in a normalised clause, and the clause with them masked out."""
    found: list[Party] = []
    masked = _COLLECTOR_WORDS.sub(lambda m: "#" * len(m.group(0)), clause)

    def mask(m: re.Match[str]) -> str:
        return "#" * len(m.group(0))

    for pattern in (_ZH_CONTACT_LIST, _EN_CONTACT_LIST):
        for m in pattern.finditer(masked):
            who = m.groupdict().get("who")
            # A relation inside the list ("通讯录里的同事") is kept; "好友", "人", "号码" are just entries.
            role = _ROLE_OF.get(who or "", "contact_list_entry")
            if role in ("public", "other_third_party") or who in ("亲友",):
                role = "contact_list_entry"
            # "通讯录里的人" is many people unless a number says otherwise.
            count = _count(clause, m, default=2 if role == "contact_list_entry" else 1)
            found.append(Party(role, "contact_list", count, m.group(0), m.start()))
        masked = pattern.sub(mask, masked)
    for m in _EMERGENCY.finditer(masked):
        count = _count(clause, m, default=1)
        found.append(Party("emergency_contact", "borrower_designated", count, m.group(0), m.start()))
    masked = _EMERGENCY.sub(mask, masked)
    for m in _KEYWORDS.finditer(masked):
        role = _ROLE_OF[m.group(0)]
        if role != "public" and _QUALIFIES_GROUP.match(masked, m.end()):
            continue  # "我们公司的工作群": the group is the recipient, the company only names it
        count = 1 if role == "public" else _count(clause, m, default=1)
        found.append(Party(role, None, count, m.group(0), m.start()))
    masked = _KEYWORDS.sub(mask, masked)
    # The possessive before a third party is not the borrower being contacted ("给我妈", "my boss").
    masked = _POSSESSIVE.sub(mask, masked)
    found.sort(key=lambda p: p.start)
    # "从我通讯录里找到我的同事": the colleague is the recipient, the contact list the number's source.
    specific = [p for p in found if p.source is None and p.role != "public"]
    listed = [p for p in found if p.role == "contact_list_entry"]
    if listed and specific:
        found = [Party(p.role, "contact_list", p.count, p.text, p.start) if p in specific else p
                 for p in found if p not in listed]
    # One party per role per clause ("我妈和我爸" is one relative contact of two people).
    merged: dict[str, Party] = {}
    for p in found:
        prev = merged.get(p.role)
        if prev is None:
            merged[p.role] = p
        else:
            count = 1 if p.role == "public" else max(prev.count, p.count, 2)
            merged[p.role] = Party(p.role, prev.source or p.source, count, prev.text, prev.start)
    return list(merged.values()), masked


def borrower_addressed(masked_clause: str) -> bool:
    """Whether a clause (third parties masked) speaks of a contact with the borrower ("给我打电话")."""
    return _BORROWER.search(masked_clause) is not None
