"""What was said or done: disclosures, banned conduct and the purpose of a contact.

Phrases map to DESIGN §5 values:
``说我欠钱`` / "said I owe" -> discloses ``debt_existence``; an amount (``欠了5000``, "$500") ->
``debt_amount``; ``老赖`` / ``骗子`` / ``骂`` -> ``insult``; ``自称法院/公安/律师`` ->
``impersonate_authority``; ``坐牢`` / ``抓你`` / ``拘留`` -> ``false_legal_claim``; ``威胁`` /
``恐吓`` -> ``threat``. ``要起诉`` on its own is a lawful statement (a creditor may sue) and adds
nothing; coupled with jail or arrest it is a false legal claim through those words.
A phrase right after a negator ("没有说我欠钱", "didn't mention the debt") adds nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["Speech", "find_speech", "negated", "without_threats"]


@dataclass
class Speech:
    """Facts about the content of one clause."""

    discloses: set[str] = field(default_factory=set)
    conduct: set[str] = field(default_factory=set)
    purpose: str | None = None
    evidence: list[str] = field(default_factory=list)
    said: list[str] = field(default_factory=list)  # reported words rebuilt as the collector said them


# Said about the debt: a speech verb before debt words ("说我欠钱"), the debtor named with the
# debt ("我欠了…"), or asking someone to pay or press for payment. "逾期后他们…" (the
# borrower's own state, in passing) is not something said to anyone.
_DEBT_WORDS = (r"(?:欠钱|欠款|欠债|欠了|欠他们|欠平台|借钱不还|欠钱不还|没还钱|没有还钱|没还款|借了网贷|"
               r"借网贷|网贷逾期|"
               r"逾期|不还钱|再不还|欠着不还|赖账|还不上|借款|贷款|催款|催债|还钱|还款|债务|账单)")
_DEBT = re.compile(
    r"(?:说|讲|告诉|通知|提到|透露|曝光|宣扬|称|内容是|写着|写的是)(?:了)?(?:他们|她们|大家)?(?:说)?(?:我|"
    r"他|她)?(?:的)?"
    r"[^,。]{0,6}?" + _DEBT_WORDS
    + r"|(?:我|他|她)(?:欠|借钱不还|不还钱|逾期不还|赖账)|(?:我|他|她)的(?:欠款|欠债|债务|逾期|借款|贷款|账单)"
    r"|催(?:我|他|她)?(?:赶紧|尽快|快点)?还|(?:帮|替|代)(?:我|他|她)?还"
    r"|\b(?:said|told \w+|mentioned|saying|that) (?:that )?(?:i|he|she) (?:owe|owed|owes|had not paid|"
    r"hadn't paid|haven't paid|didn't pay|was behind|defaulted)|\bmy (?:debt|loan|unpaid)\b|\babout (?:the|"
    r"my) debt"
)
_AMOUNT = re.compile(r"(?:欠|还|金额|借了?)\s?(?:了)?\s?[¥$]?\s?\d[\d,.]*\s?(?:万|千)?\s?(?:元|块)?|多少钱|"
                     r"具体金额|欠款金额|"
                     r"[¥$€]\s?\d|\d[\d,.]*\s?(?:元|块钱|块|万|dollars|yuan|euros?)|\bthe amount\b|\bhow much i owe")
_INSULT = re.compile(r"老赖|骗子|人渣|畜生|不要脸|无赖|垃圾|废物|傻逼|王八蛋|诈骗犯|骂|辱骂|侮辱|羞辱|"
                     r"deadbeat|scammer|fraudster|\bthief\b|\bliar\b|insult|cursed|swore at|called me an? ")
_THREAT = re.compile(r"威胁|恐吓|吓唬|弄死|打死|砍死|收拾你|让你好看|后果自负|小心点|出门小心|知道你住哪|"
                     r"不会放过|"
                     r"threat|intimidat|kill me|hurt me|hurt my|know where i live")
# A threat to tell others, not a report that they did ("告诉我同事我欠钱" is a disclosure).
_TARGETS_ZH = (r"(?:你|我)?的?(?:通讯录|所有联系人|紧急联系人|家人|家里人|单位|公司|同事|领导|亲友|亲戚|朋友|父母|爸妈|"
               r"老婆|老公)")
_TARGETS_EN = (r"(?:my|your) (?:contacts|family|boss|employer|friends|parents|wife|husband|coworkers|"
               r"colleagues)")
_DISCLOSURE_THREAT = re.compile(
    r"(?:要|会|就|将|扬言|威胁(?:说|要)?|不然|否则)[^,。]{0,4}?(?:爆|曝光|群发|通知|告诉|打给|发给|联系)"
    + _TARGETS_ZH + r"(?:(?:和|跟|与|、|及|以及|还有)" + _TARGETS_ZH + r")*"
    r"|爆(?:你|我)?的?通讯录"
    r"|(?:threaten|threatened|would|will|going to) (?:to )?(?:tell|call|text|contact|expose)[^.]{0,12}"
    + _TARGETS_EN + r"(?:(?:,| and|, and) " + _TARGETS_EN + r")*"
)
_IMPERSONATE = re.compile(r"(?:自称|冒充|假装|假冒|说(?:他|她)?是|称是|说自己是|谎称)(?:是)?\s?(?:\S{0,6}?)"
                          r"(?:法院|法官|公安|警察|派出所|检察院|律师|政府|执行局|司法)"
                          r"|(?:pretended|claimed|claiming|said) (?:to be|they were|he was|she was|it was) "
                          r"(?:from |with )?"
                          r"(?:the |a )?(?:police|court|sheriff|lawyer|attorney|government|judge)")
_FALSE_LEGAL = re.compile(r"坐牢|拘留|抓(?:你|我|人)|被抓|逮捕|判刑|刑事|立案|通缉|进监狱|蹲监狱|吃牢饭|"
                          r"影响(?:子女|孩子)|"
                          r"\barrest|\bjail\b|\bprison\b|criminal charges|criminal record")
_FAKE_DOCS = re.compile(r"(?:假|伪造|冒充|所谓)的?(?:律师函|传票|逮捕令|法院文书|判决书)|逮捕令|拘捕令|通缉令|"
                        r"fake (?:court|legal|summons|warrant)|forged")
_VIOLENCE = re.compile(r"动手|殴打|打伤|打了我(?!电话|的电话)|推我|推搡|揍|砸|泼油漆|泼粪|hit me|punched|"
                       r"beat me|assault")
_STALKING = re.compile(r"跟踪|尾随|跟着我|蹲守|守在|stalk|followed me|waiting outside")
_EXTRA_FEES = re.compile(r"催收费|上门费|手续费|服务费|额外(?:的)?费用|collection fee|extra fee|visit fee")
_INDUCE = re.compile(r"以贷养贷|借新还旧|去(?:别的|其他)平台借|让我(?:去)?借(?:网贷|高利贷|钱还)|"
                     r"take out (?:another|a new) loan|borrow (?:money )?to pay")
_COLLECT = re.compile(r"(?:让|要|叫|逼|催)(?:他|她|他们|她们)?(?:帮我|替我|代我|代)?还|代还|替我还|帮我还|"
                      r"督促我还|"
                      r"催我还|让(?:他|她|他们|她们)(?:转告|告诉)我(?:赶紧|马上|快)?还|"
                      r"(?:asked|told|pressed|demanded) (?:them|him|her) to (?:pay|make me pay)|pay (?:for|"
                      r"on behalf of) me")
_LOCATE = re.compile(r"问(?:我|他|她)(?:的)?(?:新|现在的|最新的)?"
                     r"(?:手机号码|手机号|手机|电话号码|号码|电话|联系方式|在哪|下落|地址|住址)|打听我|找我|"
                     r"联系不上我|能不能联系上我|能否联系上我|联系得上我|有没有我的消息|"
                     r"让我(?:回|打)(?:个)?电话|让我联系|转告我(?:联系|回电)|"
                     r"asked (?:for|where) (?:my|i)|where i (?:am|was|live)|my new number|to call them back")


# A negator of the borrower's own act ("再不还就…", "我没接") does not negate what follows it.
# A question ("能不能", "有没有", "是不是") is no negation either.
_NEGATOR_ZH = re.compile(r"(?<!有)没(?!还|接|钱|空)|(?<![能可是要会])不(?!还|接|给|理|回|起|了|然|要脸|停)|未(?!还)|"
                         r"别|从未")
_NEGATOR_EN = re.compile(r"\b(?:not|never|no|without)\b|n't\b")


def negated(clause: str, start: int) -> bool:
    """Whether the words just before ``start`` negate what follows ("没有说我欠钱", "didn't say")."""
    return bool(_NEGATOR_ZH.search(clause[max(0, start - 5):start])
                or _NEGATOR_EN.search(clause[max(0, start - 16):start]))


def _hit(pattern: re.Pattern[str], clause: str, sp: Speech) -> bool:
    for m in pattern.finditer(clause):
        if not negated(clause, m.start()):
            sp.evidence.append(m.group(0))
            return True
    return False


def find_speech(clause: str) -> Speech:
    """Disclosures, conduct and purpose stated in one normalised clause."""
    sp = Speech()
    if _hit(_DEBT, clause, sp):
        sp.discloses.add("debt_existence")
        if _AMOUNT.search(clause):
            sp.discloses.add("debt_amount")
    if _hit(_INSULT, clause, sp):
        sp.conduct.add("insult")
        if re.search(r"老赖|赖账|deadbeat", clause):  # the label itself says there is an unpaid debt
            sp.discloses.add("debt_existence")
    if _hit(_DISCLOSURE_THREAT, clause, sp):
        # "disclosure_threat" is no event field: the guard's lint derives it from the words, so
        # the reported threat is passed on as the collector's words ("通知我单位" -> "通知你单位").
        sp.conduct.add("threat")
        sp.said.append(_as_said(sp.evidence[-1]))
    elif _hit(_THREAT, clause, sp):
        sp.conduct.add("threat")
    if _hit(_IMPERSONATE, clause, sp):
        sp.conduct.add("impersonate_authority")
    if _hit(_FALSE_LEGAL, clause, sp):
        sp.conduct.add("false_legal_claim")
    if _hit(_FAKE_DOCS, clause, sp):
        sp.conduct.add("fake_documents")
    if _hit(_VIOLENCE, clause, sp):
        sp.conduct.add("violence")
    if _hit(_STALKING, clause, sp):
        sp.conduct.add("stalking")
    if _hit(_EXTRA_FEES, clause, sp):
        sp.conduct.add("extra_fees")
    if _hit(_INDUCE, clause, sp):
        sp.conduct.add("induce_borrowing")
    if _hit(_COLLECT, clause, sp):
        sp.purpose = "collect"
    elif _hit(_LOCATE, clause, sp):
        sp.purpose = "locate"
    return sp


def _as_said(reported: str) -> str:
    """A reported phrase in the collector's voice: the borrower's "我/my" is the collector's "你/your"."""
    return re.sub(r"\bmy\b", "your", reported.replace("我", "你"))


def without_threats(clause: str) -> str:
    """``clause`` with threats to tell others blanked: the people named there were not contacted."""
    return _DISCLOSURE_THREAT.sub(lambda m: " " * len(m.group(0)), clause)
