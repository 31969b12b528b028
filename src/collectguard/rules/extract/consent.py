"""Consents, refusals and the state of things: what the borrower agreed to and what they asked.

* ``我没同意`` / ``没授权通讯录`` -> ``consent.contact_list`` (and third-party contact) ``none``;
  ``注册时授权了通讯录`` -> ``bundled`` (a permission ticked in a sign-up flow is not separate
  consent); ``单独同意`` -> ``separate``; ``撤回授权`` -> withdrawn.
* ``明确告诉他们不要再联系`` -> ``no_contact_requested`` for whoever said it.
* ``我一直能接电话`` -> the borrower was *not* unreachable; ``我换号了`` / ``失联`` -> unreachable.
* ``约定`` + time words -> a hint that contact hours may have been agreed (then it is asked).
* ``已经还清`` -> ``debt.status`` paid; ``催收公司`` -> ``collector.kind`` agency.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from collectguard.rules.extract.speech import negated

__all__ = ["Statements", "find_statements"]


@dataclass(frozen=True)
class Statements:
    """What a clause says about consent and state (``None``: not said)."""

    contact_list_consent: str | None = None
    third_party_consent: str | None = None
    withdrawn: bool = False
    no_contact_requested: bool = False
    reachable: bool | None = None  # True: the borrower could be reached; False: unreachable
    agreed_hours_hint: bool = False
    agreed_hours_none: bool = False
    debt_status: str | None = None
    agency: bool = False
    repeated: bool = False


_NO_CONSENT = re.compile(r"(?:没有?|未|从没|从来没有?|不曾|并没有?)(?:经过)?(?:我的?)?(?:同意|授权|允许|答应)"
                         r"|never (?:agreed|consented|gave (?:consent|permission))|without my (?:consent|"
                         r"permission)"
                         r"|didn't (?:agree|consent)|did not (?:agree|consent)")
_BUNDLED = re.compile(r"(?:注册|下载|安装|借款|申请)(?:的)?时(?:候)?(?:被迫|默认|勾选|点了)?(?:同意|授权|"
                      r"允许)(?:了)?(?:读取)?通讯录|"
                      r"授权了通讯录|通讯录(?:权限)?(?:是)?(?:默认|勾选)|allowed (?:access to )?my "
                      r"contacts when|"
                      r"gave (?:the app )?(?:access|permission) to my contacts")
_SEPARATE = re.compile(r"单独同意|单独授权|separately consented|separate consent")
_WITHDRAWN = re.compile(r"撤回(?:了)?(?:授权|同意)|取消(?:了)?(?:通讯录)?授权|关闭(?:了)?通讯录权限|"
                        r"withdr[ae]w (?:my )?consent|"
                        r"revoked (?:the )?(?:permission|consent)")
_STOP = re.compile(r"(?<![能可])(?:不要|别|不准|不许|不得|不能)(?:再)?(?:给我|打给我|联系|打|找|骚扰|发)|让(?:他们|他|"
                   r"她|对方)(?:不要|别)(?:再)?(?:打|联系|找)|"
                   r"拒绝(?:了)?(?:他们|对方)?|"
                   r"(?:told|asked) (?:them|him|her|the collectors?) (?:to stop|not to call|not to contact|"
                   r"to leave)|"
                   r"(?:asked|told) (?:them )?to stop (?:calling|contacting|texting)|refused to (?:talk|"
                   r"help)|cease")
_REACHABLE = re.compile(r"(?:我|本人)(?:的)?(?:电话|手机|号码)?(?:一直|每天|都|每次|总是|也)*(?:能|可以)?(?:接|"
                        r"打得通|畅通|开机|在用|联系得上|联系上)|"
                        r"(?:我)?没有?(?:失联|换号|换过号|关机|停机|躲)|我一直(?:在)?(?:接|回复|回|还|联系)"
                        r"|接通了|我接了|我都接|"
                        r"i (?:always|did|do) (?:answer|pick up|reply)|i answered|i picked up|i was "
                        r"reachable|"
                        r"i (?:have )?never (?:changed my number|been unreachable|hid)|i talked to them|i "
                        r"spoke (?:to|with) them")
_UNREACHABLE = re.compile(r"失联|联系不上(?:我)?|找不到我|手机(?:丢|坏|被偷)了?|我换(?:了)?(?:号|号码|手机号)|"
                          r"(?:手机|号码|电话)"
                          r"(?:已经)?(?:停机|空号|注销|关机)|"
                          r"(?:去世|死亡|过世|无民事行为能力)|i changed my number|my (?:phone|number) was "
                          r"(?:off|dead|disconnected)|"
                          r"couldn't reach me|could not reach me|unreachable|passed away")
_AGREED = re.compile(r"约定|说好|商量好|同意(?:他们)?(?:在|晚上|这个时间)|agreed (?:times|hours|to be "
                     r"called)|call me (?:after|before)")
_NO_AGREED = re.compile(r"(?:没有?|从没|从来没有?|未|不曾)(?:跟他们|和他们|与对方)?(?:约定|说好|同意)(?:过)"
                        r"?(?:时间|晚上|夜里|这个时间|可以晚上)|"
                        r"never agreed to (?:be called|calls) (?:at night|late|at that time)")
# Done, not demanded: "已经还清" / "还清了", never "让我今天之内还清".
_PAID = re.compile(r"(?:已经|早就|早已|已)(?:全部)?(?:还清|结清|还完)|(?:还清|结清|还完)了|全部还了|"
                   r"paid (?:it )?(?:off|in full)|already (?:paid|repaid)")
_DISPUTED = re.compile(r"(?:有)?异议|不认(?:这笔|这个)?(?:账|债)|根本没借|没借过|dispute|never borrowed")
_AGENCY = re.compile(r"催收公司|催收机构|第三方催收|外包|委外|collection agency|debt collector|collectors? "
                     r"from an agency")
_REPEATED = re.compile(r"又|再次|反复|多次|每天|天天|一直|不停|继续|还在|again|repeatedly|every day|kept|"
                       r"keep")


def _says(pattern: re.Pattern[str], clause: str) -> bool:
    return any(not negated(clause, m.start()) for m in pattern.finditer(clause))


def find_statements(clause: str) -> Statements:
    """Consent and state statements in one normalised clause."""
    agreed_none = _NO_AGREED.search(clause) is not None
    # "没同意晚上打" is about contact hours, not about the contact list.
    no_consent = not agreed_none and _NO_CONSENT.search(clause) is not None
    contact_list = third_party = None
    if no_consent:
        # "没同意他们联系我家人" is about third-party contact; about the contact list otherwise too.
        third_party = "none"
        contact_list = "none" if re.search(r"通讯录|联系人|contacts", clause) or not re.search(
            r"家人|同事|朋友|单位|family|friends|boss", clause) else None
    elif _SEPARATE.search(clause):
        contact_list = "separate"
    elif _BUNDLED.search(clause):
        contact_list = "bundled"
    reachable: bool | None = None
    if _REACHABLE.search(clause):
        reachable = True
    elif _says(_UNREACHABLE, clause) and not re.search(r"(?:他们|对方|催收)(?:说|称|以为)", clause):
        reachable = False
    return Statements(
        contact_list_consent=contact_list,
        third_party_consent=third_party,
        withdrawn=_says(_WITHDRAWN, clause),
        no_contact_requested=_STOP.search(clause) is not None,
        reachable=reachable,
        agreed_hours_hint=_AGREED.search(clause) is not None,
        agreed_hours_none=agreed_none,
        debt_status="paid" if _says(_PAID, clause) else "disputed" if _DISPUTED.search(clause) else None,
        agency=_AGENCY.search(clause) is not None,
        repeated=_REPEATED.search(clause) is not None,
    )
