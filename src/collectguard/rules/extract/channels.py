"""How the contact happened (``channel``) and what happened on a visit.

``打电话`` -> ``call``; ``短信`` -> ``sms``; ``微信`` -> ``im``; ``上门`` -> ``visit``;
``发到群里`` / ``朋友圈`` -> ``public_post``. On a visit: ``一个人上门`` -> 1 visitor; ``不走`` /
``堵门`` -> ``restrict_liberty``; ``闯进我家`` -> ``enter_home``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from collectguard.rules.extract.numerals import NUMBER, number_value
from collectguard.rules.extract.speech import negated

__all__ = ["Channels", "find_channels"]


@dataclass
class Channels:
    """Channels named in one clause, in order, and the facts of a visit."""

    channels: list[str] = field(default_factory=list)
    visitors: int | None = None
    conduct: set[str] = field(default_factory=set)


_CHANNELS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("public_post", re.compile(r"群里|群聊|群发到|拉群|建群|朋友圈|微博|抖音|快手|贴吧|发帖|张贴|"
                               r"贴(?:了)?[^,。]{0,4}?(?:告示|海报|大字报|传单|公告)|"
                               r"公告栏|挂到网上|发到网上|曝光|posted|facebook|twitter|instagram|tiktok|"
                               r"group chat|"
                               r"social media|on the internet|online post")),
    # A visit announced or threatened ("再不还就要上门") is not a visit.
    ("visit", re.compile(r"(?<!要)(?<!会)(?<!将)(?<!就)(?<!扬言)上门|登门|家访|外访|找上门|(?:来|去|跑|找|冲|闯)"
                         r"(?:到|了|去)?(?:我|我们)?的?"
                         r"(?:家|家里|单位|公司|小区|门口)|到(?:我|我们)?(?:家|家里)(?:来|找|堵|闹|里)|"
                         r"堵门|堵在门口|敲门|came to my (?:home|house|door|apartment|work|office)|showed up|"
                         r"turned up|knocked|at my door|visited (?:me|my)|home visit")),
    ("sms", re.compile(r"短信|发信息|发了信息|发消息|发了消息|信息轰炸|发给|群发|\btexts?\b|\btexted\b|\bsms\b|text "
                       r"messages?")),
    ("im", re.compile(r"微信|qq|私信|whatsapp|wechat|messenger|\bdms?\b|telegram")),
    ("email", re.compile(r"邮件|邮箱|e-?mails?|e-?mailed")),
    ("app_push", re.compile(r"app推送|推送|站内信|push notification")),
    ("letter", re.compile(r"寄信|信件|寄了|律师函|催收函|挂号信|\bletters?\b|\bmailed\b")),
    ("call", re.compile(r"电话|来电|打给|打来|打了|致电|拨打|呼叫|语音|机器人|"
                        r"\bcall(?:s|ed|ing)?\b|\bphoned\b|\brang\b|\bringing\b|voicemail|robocall")),
)
_VISITORS = re.compile(rf"(?P<n>{NUMBER})\s?(?:个|名|位)\s?(?:人|催收员|催收人员|男的|男人|大汉)|"
                       r"(?P<one>独自|单独|一个人|只有一个人)|"
                       r"(?P<many>一群人|几个人|好几个人|一帮人|一伙人)"
                       rf"|\b(?P<en>{NUMBER}) (?:men|people|guys|collectors|agents)\b|\b(?P<en1>a man|one "
                       r"man|one guy|"
                       r"one person|alone|by himself|by herself|a single collector)\b")
_RESTRICT = re.compile(r"不走|赖着不走|堵门|堵在门口|堵我|不让我走|不让我出门|不让我离开|不让我出去|围住|"
                       r"扣留|关起来|"
                       r"refused to leave|wouldn't leave|would not leave|blocked (?:the|my) (?:door|way)|"
                       r"wouldn't let me (?:leave|go)|would not let me (?:leave|go)")
_ENTER = re.compile(r"闯进|冲进|进了我家|进屋|进到家里|进到我家|强行进入|闯入|破门|硬闯|"
                    r"forced (?:their|his|her) way in|came inside|entered my (?:home|house|apartment)|"
                    r"barged in")


def find_channels(clause: str) -> Channels:
    """The channels and visit facts in one normalised clause (see the module docstring)."""
    out = Channels()
    for name, pattern in _CHANNELS:
        m = pattern.search(clause)
        if m is not None and not (name == "call" and out.channels and m.group(0) == "打了"):
            out.channels.append(name)
    if "visit" in out.channels or _RESTRICT.search(clause) or _ENTER.search(clause):
        if "visit" not in out.channels:
            out.channels.append("visit")
        m = _VISITORS.search(clause)
        if m is not None:
            if m.group("one") or m.group("en1"):
                out.visitors = 1
            elif m.group("many"):
                out.visitors = 3
            else:
                out.visitors = number_value(m.group("n") or m.group("en") or "")
        for conduct, pattern in (("restrict_liberty", _RESTRICT), ("enter_home", _ENTER)):
            m = pattern.search(clause)
            if m is not None and not negated(clause, m.start()):
                out.conduct.add(conduct)
    # A call is how a message was delivered only when nothing else was said ("打了…短信" is odd).
    if len(out.channels) > 1 and "call" in out.channels and "visit" in out.channels:
        out.channels.remove("call")
    return out
